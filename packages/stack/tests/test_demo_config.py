"""The configuration the demo's services run with."""

from __future__ import annotations

from pathlib import Path

import pytest

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

    assert _training_progress(None, set(), 8, 2) == 0.0
    assert _training_progress(manifest(1), set(), 8, 2) == 0.0
    pairs_only = _training_progress(manifest(8), set(), 8, 2)
    assert 0.0 < pairs_only < 0.5
    assert _training_progress(manifest(8), {"gravity", "user-sft", "pref-align"}, 8, 2) == 1.0


def test_training_progress_places_each_adapter_on_the_trainers_schedule() -> None:
    """With two runs at a time, UserSFT (second in the queue, shorter than GRAVITY) ends well past the
    middle of the stage; weighed by its share alone it counted as 2/5 done, and the estimate doubled when it
    ended. One at a time, the parts simply add up."""
    from gravity_stack.demo import TRAINING_PARTS_S, training_fraction

    one_at_a_time = training_fraction({"pairs", "gravity"}, 1)
    assert one_at_a_time == pytest.approx(
        (TRAINING_PARTS_S["pairs"] + TRAINING_PARTS_S["gravity"]) / sum(TRAINING_PARTS_S.values())
    )
    two = {part: training_fraction({"pairs", part}, 2) for part in ("gravity", "user-sft", "pref-align")}
    assert two["user-sft"] < two["gravity"] < two["pref-align"] == 1.0
    assert two["user-sft"] > 0.5


def test_generation_batches_32_rows_while_scoring_keeps_its_chunks(tmp_path: Path) -> None:
    """Writer and author decode in batches of 32 and share one model (same endpoint); the annotator and the
    judge score in the chunks they always had (their chunk size follows max_batch_size, and a profile or a
    rating must not change because the demo batches its descriptions)."""
    from gravity_generator.service import host_settings
    from gravity_generator.settings import GeneratorSettings
    from gravity_stack.demo import GENERATION_BATCH

    config = demo_config(DemoOptions(out=tmp_path), "127.0.0.1:9092", {}, sample_dir() / "meta_Books.jsonl")
    settings = Settings.model_validate(config)
    assert settings.llm.role("writer") == settings.llm.role("author")
    assert settings.llm.role("writer").max_batch_size == GENERATION_BATCH == 32
    assert settings.llm.role("annotator").max_batch_size == settings.llm.role("judge").max_batch_size == 8
    generator = settings.section("generator", GeneratorSettings)
    assert generator.max_batch == GENERATION_BATCH
    # the demo sends 32 at once: the generator must still have threads for its ListMethods polls
    assert host_settings(settings, generator).grpc.max_workers > GENERATION_BATCH


def test_the_judge_runs_in_worker_processes_that_judge_units_in_parallel(tmp_path: Path) -> None:
    """The demo's judge scores in two worker processes of one thread each (its own model copies, the
    annotator's scoring chunks), and judges as many units at once as it has workers."""
    from gravity_judge.pipeline import concurrency_for

    for processes in (2, 1):
        opts = DemoOptions(out=tmp_path, judge_processes=processes)
        settings = Settings.model_validate(
            demo_config(opts, "127.0.0.1:9092", {}, sample_dir() / "meta_Books.jsonl")
        )
        judge = settings.llm.role("judge")
        assert judge.processes == processes
        assert judge.model_copy(update={"processes": 1}) == settings.llm.role("annotator")
        assert concurrency_for(settings) == processes


def test_each_profiler_replica_takes_its_share_of_the_readers(tmp_path: Path) -> None:
    """Two profiler processes of one thread each share the queue: each claims half of the demo's readers in one
    batch (a batch of all eight would leave the second process idle)."""
    from gravity_profiler.settings import ProfilerSettings

    for users, replicas, batch in ((8, 2, 4), (2, 2, 1), (8, 1, 8), (5, 2, 3)):
        opts = DemoOptions(out=tmp_path, users=users, profiler_replicas=replicas)
        config = demo_config(opts, "127.0.0.1:9092", {}, sample_dir() / "meta_Books.jsonl")
        assert Settings.model_validate(config).section("profiler", ProfilerSettings).batch_users == batch


def test_every_demo_option_is_a_flag_of_gravity_demo() -> None:
    from gravity_stack.cli import demo

    flags = {p.name for p in demo.params}
    fields = set(DemoOptions.model_fields) - {"extra"}
    assert "out_dir" in flags and fields - {"out"} <= flags, fields - flags
