# The two commands of the README: `make up` and `make test`. Both install what is missing.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: up test test-fast lint fmt schema protos bench deps engine test-deps

deps:
	scripts/bootstrap.sh up

# The engine Pomegranate drives and the base images its builder uses (built locally, cached).
engine:
	scripts/docker.sh
	scripts/base-images.sh

test-deps: engine
	scripts/bootstrap.sh test
	scripts/postgres.sh >/dev/null

up: deps engine
	scripts/up.sh

test: test-deps lint
	$(BIN)/pytest

# Unit tests only, no services.
test-fast: deps
	$(BIN)/pytest tests/unit

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: deps
	$(BIN)/python -m backend export-schema

protos: deps
	scripts/gen-protos.sh

bench: test-deps
	$(BIN)/python -m bench
