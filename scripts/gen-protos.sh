#!/usr/bin/env bash
# Regenerate the gRPC stubs beside their .proto files (tests/unit/test_protos.py checks they match).
# The *_pb2_grpc.pyi type stubs come from mypy-protobuf's plugin (issue 13: mypy checks the callers).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
python="${PYTHON:-.venv/bin/python}"
"$python" -m grpc_tools.protoc -I . \
    --plugin=protoc-gen-mypy_grpc="$(dirname "$python")/protoc-gen-mypy_grpc" \
    --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" --mypy_grpc_out="$out" \
    backend/rpc/pomegranate.proto backend/rpc/platform.proto
