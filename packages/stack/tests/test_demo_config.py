"""The configuration the demo's services run with."""

from __future__ import annotations

from pathlib import Path

from gravity_core.config import Settings
from gravity_core.sample import sample_dir
from gravity_stack.demo import demo_config
from gravity_stack.demo_options import DemoOptions


def test_the_demo_keeps_its_response_cache_in_its_own_directory(tmp_path: Path) -> None:
    """A shared cache would answer a repeated demo from earlier runs, and its time would not be a first run's."""
    out = tmp_path / "demo"
    config = demo_config(DemoOptions(out=out), "127.0.0.1:9092", {}, sample_dir() / "meta_Books.jsonl")
    cache = Settings.model_validate(config).cache
    assert cache.enabled and cache.resolved_path().parent == out.resolve()
