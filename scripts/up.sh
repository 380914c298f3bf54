#!/usr/bin/env bash
# Start the whole platform on the embedded defaults and print every URL (`make up`).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"

python -m backend migrate
# The registry's credentials exist before Pomegranate's first build (scripts/registry.sh).
scripts/registry.sh prepare
python - <<'PY'
from backend.repos import git_url
from backend.settings import get_settings

s = get_settings()
print()
print(f"PaaSTech is starting (data in {s.data_dir.resolve()}, database {s.db_url.split('@')[-1]})")
print(f"  GraphQL API   http://{s.host}:{s.api_port}/graphql")
if s.development:
    print(f"  GraphiQL      http://{s.host}:{s.api_port}/graphql  (open in a browser)")
print(f"  Web app       http://{s.host}:{s.web_port}")
print(f"  Subscriptions ws://{s.host}:{s.api_port}/graphql  (graphql-transport-ws)")
print(f"  Apps          {s.app_url(s.project_hostname('<project>'))}  (embedded ingress on {s.ingress_host or s.host}:{s.ingress_port})")
if s.tls:  # issue 21: the ingress terminates TLS with ACME certificates
    print(f"  HTTPS         {s.ingress_host or s.host}:{s.ingress_https_port}, certificates from {s.acme_directory_url}")
print(f"  git push      {git_url('<project>', s)}")
print(f"  Registry      http://{s.registry_address}/v2/  (platform images; credentials in {s.data_dir.resolve() / 'registry'})")
print(f"  Internal gRPC API {s.host}:{s.api_grpc_port}, Pomegranate {s.host}:{s.pomegranate_port}")
print(f"  Supervisor    sv status {(s.data_dir / 'run' / 'sv').resolve()}/*  (logs in {(s.data_dir / 'logs').resolve()}/<name>/current)")
print()
PY
# runit runs every Procfile line and restarts the one that crashes (backend/supervise.py).
exec python -m backend supervise --procfile Procfile
