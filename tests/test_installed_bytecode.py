"""The environment `uv run` installs holds compiled bytecode for the heavy libraries (issue 19, first-run time).

Where PYTHONDONTWRITEBYTECODE is set (many container images, this project's CI machine) Python never writes
``__pycache__``, so without bytecode written at install every process compiles torch, transformers and TRL
from source again as it imports them: measured ~15 CPU-s per process against ~5, for each of the demo's
services and each test subprocess. ``compile-bytecode = true`` in the workspace's ``[tool.uv]`` (and
``--compile-bytecode`` where ``scripts/sync-env.sh`` installs the CPU torch wheel) writes it once.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# files every service imports at start, and one deep in transformers that loading a Llama-style model needs;
# found without importing them (an import where bytecode may be written would write what this checks)
HEAVY_FILES = (
    ("torch", "__init__.py"),
    ("torch", "nn/functional.py"),
    ("transformers", "__init__.py"),
    ("transformers", "models/llama/modeling_llama.py"),
    ("trl", "__init__.py"),
)


@pytest.mark.parametrize(("package", "file"), HEAVY_FILES)
def test_heavy_modules_are_installed_with_their_bytecode(package: str, file: str) -> None:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin is not None, f"{package} is not installed"
    source = Path(spec.origin).parent / file
    assert source.is_file(), f"{source} is missing"
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert cached.is_file(), (
        f"{source} has no bytecode at {cached}: install with uv's compile-bytecode (see pyproject.toml), or "
        "every process compiles it from source where PYTHONDONTWRITEBYTECODE is set"
    )
