"""Fixtures for the judge tests; the helpers live in judge_fixtures.py (importable by the test modules)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from judge_fixtures import METHOD_TEXTS, USERS, ScriptedJudge, profile, unit_rows

from gravity_core.proto_io import write_jsonl


@pytest.fixture
def profiles_path(tmp_path: Path) -> Path:
    path = tmp_path / "profiles.jsonl"
    write_jsonl([profile(uid, *fields) for uid, fields in USERS.items()], path)
    return path


@pytest.fixture
def generations_path(tmp_path: Path) -> Path:
    """Two books per reader, every method, fiction and non-fiction groups."""
    rows = []
    for uid in USERS:
        rows += unit_rows(uid, "B1", METHOD_TEXTS, "Literature & Fiction")
        rows += unit_rows(uid, "B2", METHOD_TEXTS, "Business & Money")
    path = tmp_path / "generations.jsonl"
    write_jsonl(rows, path)
    return path


@pytest.fixture
def scripted() -> ScriptedJudge:
    return ScriptedJudge()
