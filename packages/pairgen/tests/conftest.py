"""Fixtures: the catalog and a profile writer (synthetic sample profiles come from tests/gravity_testing.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gravity.v1 import profile_pb2
from gravity_core.catalog import Catalog
from gravity_core.proto_io import write_jsonl


@pytest.fixture(scope="session")
def sample_catalog(sample_files: dict[str, Path]) -> Catalog:
    return Catalog.open(sample_files["meta_Books.jsonl"])


@pytest.fixture
def write_profiles(tmp_path: Path) -> Callable[..., Path]:
    def write(profiles: list[profile_pb2.UserProfile], name: str = "profiles.jsonl") -> Path:
        path = tmp_path / name
        write_jsonl(profiles, path)
        return path

    return write
