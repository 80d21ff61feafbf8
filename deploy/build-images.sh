#!/usr/bin/env bash
# Build and tag the five GRAVITY service images (CPU) and the trainer's CUDA variant from deploy/Dockerfile.
#
#   deploy/build-images.sh                      # gravity-<service>:<version> for the local Docker daemon
#   REGISTRY=registry.example.com/gravity TAG=0.1.0 PUSH=1 deploy/build-images.sh
#   SERVICES="generator judge" deploy/build-images.sh
#
# REGISTRY  image name prefix (default: none, i.e. local images named gravity-<service>)
# TAG       image tag (default: the workspace version from packages/core/pyproject.toml)
# SERVICES  which service images to build (default: all five)
# CUDA      1 (default) also builds <prefix>gravity-trainer:<tag>-cuda for the gpu overlay; 0 skips it
# PUSH      1 pushes every image after building it
# PLATFORM  target platform (default linux/amd64; the CUDA build of torch exists for amd64 and arm64)
# DOCKER    the client to use (default docker; podman and nerdctl take the same arguments)
# TORCH_CPU_INDEX  a mirror of the PyTorch CPU wheel index for the CPU images
set -euo pipefail
cd "$(dirname "$0")/.."

services="${SERVICES:-profiler pairgen trainer generator judge}"
tag="${TAG:-$(sed -n 's/^version = "\(.*\)"$/\1/p' packages/core/pyproject.toml | head -n 1)}"
prefix="${REGISTRY:+${REGISTRY%/}/}"
docker="${DOCKER:-docker}"
platform="${PLATFORM:-linux/amd64}"
common=()
if [ -n "${TORCH_CPU_INDEX:-}" ]; then
    common+=(--build-arg "TORCH_CPU_INDEX=${TORCH_CPU_INDEX}")
fi

build() {  # build <target> <image> [extra docker args...]
    local target="$1" image="$2"
    shift 2
    echo "== ${image} (target ${target})"
    DOCKER_BUILDKIT=1 "$docker" build --file deploy/Dockerfile --target "$target" --platform "$platform" \
        --tag "$image" ${common[@]+"${common[@]}"} "$@" .
    if [ "${PUSH:-0}" = 1 ]; then
        "$docker" push "$image"
    fi
}

built=()
for service in $services; do
    image="${prefix}gravity-${service}:${tag}"
    build "$service" "$image" --build-arg TORCH=cpu
    built+=("$image")
done
if [ "${CUDA:-1}" = 1 ] && [[ " $services " == *" trainer "* ]]; then
    image="${prefix}gravity-trainer:${tag}-cuda"
    build trainer "$image" --build-arg TORCH=cuda
    built+=("$image")
fi

echo "built ${#built[@]} image(s):"
printf '  %s\n' "${built[@]}"
