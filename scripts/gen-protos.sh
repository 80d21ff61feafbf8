#!/usr/bin/env bash
# Regenerate the Python stubs of the wire contract from proto/ into gravity-core.
# Usage: scripts/gen-protos.sh [OUT_DIR]   (default: packages/core/src)
# The generator version is pinned by uv.lock (grpcio-tools), so output is reproducible;
# tests/test_proto_stubs.py fails when the committed stubs drift from the protos.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-packages/core/src}"
mkdir -p "$out/gravity/v1"
uv run --no-sync python -m grpc_tools.protoc -Iproto \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    proto/gravity/v1/*.proto
