#!/usr/bin/env bash
# Create/refresh the workspace venv from uv.lock.
#
# On a machine that keeps a CPU build of torch in a local wheel folder (pip's find-links,
# e.g. /opt/wheels), install that instead of the multi-GB CUDA build the universal lock
# selects, and skip the CUDA runtime wheels torch would pull in. Afterwards run commands
# with UV_NO_SYNC=1 (or `uv run --no-sync`) so uv does not swap the CUDA build back in.
# Without such a wheel this is a plain `uv sync --frozen`.
set -euo pipefail
cd "$(dirname "$0")/.."

wheel_dirs=()
while IFS= read -r d; do [ -n "$d" ] && wheel_dirs+=("$d"); done < <(
    pip config list 2>/dev/null | sed -n "s/.*find-links='\(.*\)'/\1/p" | tr ' ' '\n'
    echo "${GRAVITY_TORCH_WHEEL_DIR:-}"
)
cpu_wheel=""
for d in "${wheel_dirs[@]}"; do
    for w in "$d"/torch-*+cpu-cp311-*.whl; do [ -f "$w" ] && cpu_wheel="$w"; done
done

if [ -z "$cpu_wheel" ]; then
    echo "sync-env: no local CPU torch wheel; plain uv sync"
    exec uv sync --frozen --all-packages
fi

echo "sync-env: using local CPU torch wheel $cpu_wheel"
skip=(--no-install-package torch)
for pkg in $(sed -n 's/^name = "\(nvidia-[^"]*\|triton\|cuda-[^"]*\)"$/\1/p' uv.lock | sort -u); do
    skip+=(--no-install-package "$pkg")
done
uv sync --frozen --all-packages "${skip[@]}"
uv pip install --python .venv/bin/python --no-deps --compile-bytecode "$cpu_wheel"
.venv/bin/python -c 'import torch; print("sync-env: torch", torch.__version__, "cuda:", torch.cuda.is_available())'
