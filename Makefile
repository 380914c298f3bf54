# The two commands of the README: `make up` and `make test`. Both install what is missing.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: up test test-fast lint fmt schema protos bench chaos deps engine test-deps web fuzz cluster cluster-down

deps:
	scripts/bootstrap.sh up

# The engine Pomegranate drives and the base images its builder uses (built locally, cached).
engine:
	scripts/docker.sh
	scripts/base-images.sh

test-deps: engine
	scripts/bootstrap.sh test
	scripts/postgres.sh >/dev/null
	# The web app's shared build, before the suite loads the machine (the e2e tests reuse it).
	scripts/web.sh build

# The web app (frontend/): its own venv, bun from the npm registry, the production build.
web: deps
	scripts/web.sh build

up: deps engine web
	scripts/up.sh

# Test files run on 4 workers (a module's tests stay together), longest first (measured times in
# tests/module_durations.json; each run writes its own to build/): most time is spent waiting on
# Docker builds and health checks, not on the 2 CPUs. The 30 slowest tests are listed at the end
# so that the next cut of the suite's time starts from figures, not guesses.
test: test-deps lint
	PAASTECH_TEST_DURATIONS_OUT=build/module_durations.json \
		$(BIN)/pytest -n 4 --dist loadfile --no-loadscope-reorder --durations=30

# Issue 12: the long fuzzing run of the API (make test runs 2,000 cases): 25,000 operations
# and 25,000 subscriptions on each of SQLite and PostgreSQL.
fuzz: test-deps
	PAASTECH_FUZZ_EXAMPLES=25000 PAASTECH_FUZZ_SUBSCRIPTIONS=25000 PAASTECH_FUZZ_TIMEOUT=86400 \
		$(BIN)/pytest -p no:randomly tests/integration/test_fuzz_sqlite.py tests/integration/test_fuzz_postgres.py

# Unit tests only, no services.
test-fast: deps
	$(BIN)/pytest tests/unit

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy  # issue 13: strict on backend/, gitd/ and cli/ ([tool.mypy] in pyproject.toml)

fmt:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: deps
	$(BIN)/python -m backend export-schema

protos: deps
	scripts/gen-protos.sh

bench: test-deps
	$(BIN)/python -m bench

# A long randomised fault run (issue 20): kill -9 of each process and dockerd restarts while
# three apps are under load and new releases are pushed; prints the report, fails on a violation.
CHAOS_MINUTES ?= 10
chaos: test-deps
	$(BIN)/python -m bench.chaos --minutes $(CHAOS_MINUTES)

# Issue 16: a 3-node Docker Swarm on this machine (network namespaces, the host's dockerd untouched);
# prints the PAASTECH_* settings that point Pomegranate at it. `make cluster-down` removes it.
cluster: engine
	scripts/cluster.sh up

cluster-down:
	scripts/cluster.sh down
