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


def test_training_progress_counts_the_pairs_only_once_every_reader_has_them() -> None:
    """Pairs arrive in a burst (the first reader alone, the rest prepared together), so a partial count is not
    a pace to extrapolate from: 1 of 8 readers once predicted 282 minutes left."""
    from gravity_core.datasets import DatasetEntry, DatasetManifest, ShardEntry
    from gravity_stack.demo import _training_progress

    def manifest(readers: int) -> DatasetManifest:
        shards = [
            ShardEntry(path=f"u{i}.parquet", user_id=f"u{i}", rows=1, sha256="") for i in range(readers)
        ]
        return DatasetManifest(datasets={"gravity": DatasetEntry(kind="dpo", shards=shards)})

    assert _training_progress(None, set(), 8) == (0.0, 4.0)
    assert _training_progress(manifest(1), set(), 8) == (0.0, 4.0)
    assert _training_progress(manifest(8), {"gravity"}, 8) == (2.0, 4.0)
