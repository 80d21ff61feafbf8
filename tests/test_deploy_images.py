"""The image recipe without Docker: deploy/docker/install-env.sh (what each image's builder stage runs) is
run against the real uv.lock in uv's dry-run mode, and the build context filter is checked against what the
Dockerfile copies."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache

import pytest
from gravity_testing import REPO

from gravity_core.registry import service_names

DEPLOY = REPO / "deploy"
INSTALL_ENV = DEPLOY / "docker" / "install-env.sh"


def _locked_version(name: str) -> str:
    text = (REPO / "uv.lock").read_text(encoding="utf-8")
    match = re.search(rf'^name = "{re.escape(name)}"\nversion = "([^"]+)"', text, re.MULTILINE)
    assert match, f"{name} is not in uv.lock"
    return match.group(1)


@cache
def _dry_run(service: str, torch: str) -> tuple[int, str]:
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed")
    env = {
        **os.environ,
        "GRAVITY_TORCH": torch,
        # Never the workspace venv: a dry run changes nothing, but point it elsewhere all the same.
        "UV_PROJECT_ENVIRONMENT": "/nonexistent/gravity-image-venv",
    }
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        ["bash", str(INSTALL_ENV), service, "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _installed(output: str) -> set[str]:
    return {m.group(1).lower() for m in re.finditer(r"^ \+ ([A-Za-z0-9_.\-]+)", output, re.MULTILINE)}


@pytest.mark.parametrize("service", service_names())
def test_cpu_image_installs_only_its_service_and_cpu_torch(service: str) -> None:
    code, output = _dry_run(service, "cpu")
    assert code == 0, output
    installed = _installed(output)
    assert {"gravity-core", f"gravity-{service}"} <= installed
    others = {f"gravity-{s}" for s in service_names() if s != service}
    assert not installed & others, "another service's package in the image"
    assert not installed & {"pytest", "ruff", "grpcio-tools", "kubernetes-validate"}, "dev dependencies"
    cuda = {p for p in installed if p.startswith(("nvidia-", "cuda-")) or p in ("triton", "torch")}
    assert not cuda, f"CUDA wheels in a CPU image: {sorted(cuda)}"
    # the same torch version as the lock, CPU build
    assert f"torch=={_locked_version('torch')}+cpu" in output


def test_cuda_trainer_image_keeps_the_locked_torch() -> None:
    code, output = _dry_run("trainer", "cuda")
    assert code == 0, output
    installed = _installed(output)
    assert {"gravity-core", "gravity-trainer", "torch"} <= installed
    assert "+cpu" not in output
    # the Job's accelerate config launches DeepSpeed ZeRO-2; QLoRA needs bitsandbytes
    assert {"deepspeed", "bitsandbytes"} <= installed


def test_install_env_refuses_unknown_services_and_variants() -> None:
    code, output = _dry_run("llm", "cpu")
    assert code == 2 and "unknown service 'llm'" in output
    code, output = _dry_run("judge", "rocm")
    assert code == 2 and "GRAVITY_TORCH must be cpu or cuda" in output


# ---------------------------------------------------------------------------------- build context filter


def _ignore_patterns() -> list[tuple[bool, str]]:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [(rule.startswith("!"), rule.lstrip("!")) for rule in rules]


def _matches(pattern: str, path: str) -> bool:
    # Docker's rules: ** spans directories, * stays within one; a matched directory covers its contents.
    regex = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace("\0", ".*")
    parts = path.split("/")
    return any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1))


def _in_context(path: str) -> bool:
    included = True
    for negated, pattern in _ignore_patterns():
        if _matches(pattern, path):
            included = negated  # the last matching rule wins
    return included


def test_build_context_holds_what_the_images_need() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    sources = [
        src
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for src in line.split()[1:-1]
    ]
    assert sources, "the Dockerfile copies nothing from the context"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for source in sources:
        files = [f for f in tracked if f == source or f.startswith(source.rstrip("/") + "/")]
        assert files, f"COPY {source}: no such tracked path"
        needed = [f for f in files if "/tests/" not in f and "__pycache__" not in f]
        missing = [f for f in needed if not _in_context(f)]
        assert not missing, f"COPY {source}: excluded from the build context: {missing[:5]}"
    # package data the services read at run time, and nothing test-only or machine-local
    assert _in_context("packages/core/src/gravity_core/data/sample/Books.jsonl")
    assert _in_context("packages/core/src/gravity_core/data/values/seed_statements.jsonl")
    for excluded in ("packages/core/tests/test_config.py", ".venv/bin/python", ".git/HEAD"):
        assert not _in_context(excluded), excluded
