"""Profiler test fixtures: a scripted LLM for fast logic tests, and the sample grouped into user inputs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from profiler_fixtures import ScriptedLLM

from gravity_core.amazon import iter_reviews, read_demographics
from gravity_core.catalog import Catalog
from gravity_core.skips import SkipLog
from gravity_profiler.inputs import UserInput
from gravity_profiler.spool import ReviewSpool


@pytest.fixture
def scripted() -> Callable[..., ScriptedLLM]:
    return ScriptedLLM


@pytest.fixture(scope="session")
def sample_catalog(sample_files: dict[str, Path]) -> Catalog:
    return Catalog.open(sample_files["meta_Books.jsonl"], SkipLog())


@pytest.fixture(scope="session")
def sample_inputs(sample_files: dict[str, Path], sample_catalog: Catalog) -> dict[str, UserInput]:
    """Every sample user with at least one review, as the batch pipeline groups them."""
    skips = SkipLog()
    demographics = read_demographics(sample_files["demographics.csv"], skips)
    with ReviewSpool() as spool:
        for number, review in iter_reviews(sample_files["Books.jsonl"], skips):
            spool.add(review, "Books.jsonl", number)
        users = spool.finalize(sample_catalog, skips, min_reviews=1).qualifying
        return {u.user_id: u for u in spool.iter_inputs(users, sample_catalog, demographics.get)}
