#!/usr/bin/env bash
# Regenerate the gRPC stubs beside their .proto files (tests/unit/test_protos.py checks they match).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
"${PYTHON:-.venv/bin/python}" -m grpc_tools.protoc -I . \
    --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" \
    backend/rpc/pomegranate.proto backend/rpc/platform.proto
