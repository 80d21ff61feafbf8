#!/usr/bin/env bash
# Install one GRAVITY service's locked environment into $UV_PROJECT_ENVIRONMENT (the image's /app/.venv).
#
#   install-env.sh SERVICE [--dry-run]
#
# Run from the workspace root (the directory holding uv.lock). Installs gravity-<SERVICE>, gravity-core and
# their locked dependencies, nothing else: no dev group, no other service, and the workspace packages as
# regular (non-editable) wheels so the runtime stage needs only the virtual environment.
#
# GRAVITY_TORCH selects the PyTorch build:
#   cpu  (default) the universal lock pins the CUDA build from PyPI (~3 GB with its nvidia-* wheels);
#        skip it and its CUDA runtime wheels and install the same torch version's CPU build instead, from
#        TORCH_CPU_INDEX (default: the PyTorch CPU index) or from the wheel file TORCH_WHEEL (a mirror).
#   cuda the lock as is (the trainer's GPU image, with its `gpu` extra: deepspeed, bitsandbytes).
# --dry-run prints what would be installed and changes nothing (the tests use it to check the recipe).
set -euo pipefail

SERVICES="profiler pairgen trainer generator judge"
service="${1:-}"
dry_run=""
[ "${2:-}" = "--dry-run" ] && dry_run="--dry-run"
torch_variant="${GRAVITY_TORCH:-cpu}"
torch_index="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"

case " $SERVICES " in
    *" $service "*) ;;
    *) echo "install-env: unknown service '${service}' (one of: ${SERVICES})" >&2; exit 2 ;;
esac
[ -f uv.lock ] || { echo "install-env: run from the workspace root (no uv.lock in $PWD)" >&2; exit 2; }

sync=(uv sync --frozen --no-dev --no-editable --package "gravity-${service}")
case "$torch_variant" in
    cuda)
        # The GPU trainer launches with DeepSpeed ZeRO and trains 4-bit QLoRA: gravity-trainer[gpu].
        if [ "$service" = trainer ]; then sync+=(--extra gpu); fi
        ;;
    cpu)
        sync+=(--no-install-package torch)
        while IFS= read -r pkg; do
            sync+=(--no-install-package "$pkg")
        done < <(sed -n 's/^name = "\(nvidia-[^"]*\|triton\|cuda-[^"]*\)"$/\1/p' uv.lock | sort -u)
        ;;
    *) echo "install-env: GRAVITY_TORCH must be cpu or cuda, not '${torch_variant}'" >&2; exit 2 ;;
esac

echo "install-env: gravity-${service} (torch: ${torch_variant})"
"${sync[@]}" ${dry_run}

if [ "$torch_variant" = cpu ]; then
    torch_version="$(sed -n '/^name = "torch"$/{n;s/^version = "\(.*\)"$/\1/p;}' uv.lock | head -n 1)"
    [ -n "$torch_version" ] || { echo "install-env: no torch version in uv.lock" >&2; exit 2; }
    python="${UV_PROJECT_ENVIRONMENT:-.venv}/bin/python"
    if [ -n "${TORCH_WHEEL:-}" ]; then
        pip_install=(uv pip install --python "$python" --no-deps "$TORCH_WHEEL")
    else
        pip_install=(uv pip install --python "$python" --no-deps --index-url "$torch_index" "torch==${torch_version}+cpu")
    fi
    if [ -n "$dry_run" ]; then
        echo "install-env: would run: ${pip_install[*]}"
    else
        "${pip_install[@]}"
    fi
fi
