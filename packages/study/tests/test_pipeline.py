"""Both description pipelines with real parts.

* embedded: pairgen's batch build, the trainer's ``train`` (one DPO step) and the generator's engine in this
  process, on two participants' profiles and the sample catalog;
* services: the profiles published to a real (Tansu) broker are read back from gravity.profiles.v1 with the
  cohort id and size; the generator service (gRPC on 127.0.0.1, following the adapters topic) hot-loads the
  cohort's adapter once it is published on gravity.adapters.v1 (as the trainer does), the pipeline sees it
  served, and descriptions come over gRPC with that adapter pinned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gravity.v1 import profile_pb2
from gravity_core.adapters import read_adapter_ref
from gravity_core.catalog import Catalog
from gravity_core.targets import select_targets
from gravity_study import profiles
from gravity_study.instruments import ipip_items, statements
from gravity_study.pipeline import Cohort, EmbeddedPipeline, Request, ServicesPipeline
from gravity_study.settings import study_settings

pytestmark = pytest.mark.model
METHODS = ["original", "gravity", "tri-agent"]


def participant_profiles(catalog: Catalog, cohort_id: str) -> list[profile_pb2.UserProfile]:
    bank = statements()
    ids = list(bank)
    out = []
    for k, (country, genres) in enumerate(
        (
            ("Japan", ("Romance", "Fiction", "Young Adult")),
            ("USA", ("Science Fiction/Fantasy", "Mystery, Thriller, Crime", "Biographies, Memoirs")),
        )
    ):
        answers = profiles.Answers(
            f"study-p{k}",
            "young",
            "female",
            country,
            genres,
            {i.id: 1 + (k + j) % 5 for j, i in enumerate(ipip_items())},
            {sid: ("agree", "disagree")[(k + j) % 2] for j, sid in enumerate(ids[:10])},
            {
                sid: {
                    "label": ("agree", "disagree", "neutral")[(k + j) % 3],
                    "confidence": 0.6,
                    "method": "logprobs",
                }
                for j, sid in enumerate(ids[10:])
            },
        )
        d = profiles.draft(answers, catalog, 0.5, 24, 6, {"source": "test"})
        d.profile.value_summary = "Values family, honesty and tradition."
        d.profile.user_summary = "A reader who enjoys warm stories about families."
        out.append(profiles.for_cohort(d.profile, cohort_id, 2, int(time.time() * 1000)))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, sample_files: dict[str, Path]) -> dict[str, Any]:
    """The embedded pipeline's cohort training, once for the module (one DPO step on the sample)."""
    import os

    from gravity_core.config import load_settings

    tmp = tmp_path_factory.mktemp("study-pipeline")
    settings = load_settings(
        None,
        env={k: v for k, v in os.environ.items() if k == "GRAVITY_HOME"},
        overrides={
            "artifacts.root": str(tmp / "artifacts"),
            "cache.enabled": False,
            "logging.level": "WARNING",
            "study.data_dir": str(tmp / "study"),
            "study.meta_path": str(sample_files["meta_Books.jsonl"]),
            "study.max_new_tokens": 12,
            "study.embedded.max_steps": 1,
            "study.embedded.items_per_trait": 2,
            "study.embedded.max_length": 192,
        },
    )
    cfg = study_settings(settings)
    catalog = Catalog.open(sample_files["meta_Books.jsonl"])
    cohort = Cohort("study-test-r1", participant_profiles(catalog, "study-test-r1"), tmp / "cohort")
    pipeline = EmbeddedPipeline(settings, cfg)
    notes: list[str] = []
    # torch from a worker thread, as the app's job thread runs it
    with ThreadPoolExecutor(1) as pool:
        adapter = pool.submit(pipeline.train, cohort, notes.append).result()
    return {
        "settings": settings,
        "cfg": cfg,
        "pipeline": pipeline,
        "cohort": cohort,
        "adapter": adapter,
        "catalog": catalog,
        "notes": notes,
    }


def test_embedded_pipeline_trains_the_cohort_and_generates_with_its_adapter(trained: dict[str, Any]) -> None:
    adapter, cohort, pipeline = trained["adapter"], trained["cohort"], trained["pipeline"]
    assert adapter["dataset_id"] == "study-test-r1/gravity" and adapter["steps"] == 1
    ref = read_adapter_ref(Path(adapter["path"]))
    assert ref.adapter_id == "study-test-r1-gravity" and ref.train_rows > 0
    assert pipeline.readiness("study-test-r1", adapter).ready
    assert not pipeline.readiness("study-test-r2", adapter).ready
    assert any("GRAVITY pairs" in n for n in trained["notes"])
    profile = cohort.profiles[0]
    (book,) = select_targets(profile, trained["catalog"], n=1, seed=13)
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(
            pipeline.generate, [Request(profile, book, m) for m in METHODS], adapter, lambda _m: None
        ).result()
    assert [g.error for g in out] == ["", "", ""]
    by_method = {g.request.method: g for g in out}
    assert by_method["original"].text == book.description
    assert by_method["gravity"].adapter.startswith("study-test-r1-gravity")
    assert by_method["gravity"].text.strip() and by_method["tri-agent"].text.strip()
    assert by_method["tri-agent"].adapter == ""


@pytest.mark.broker
def test_services_pipeline_publishes_profiles_and_waits_for_the_generator_to_serve_the_adapter(
    trained: dict[str, Any], broker: Any, make_settings: Callable[..., Any], sample_files: dict[str, Path]
) -> None:
    from gravity_testing import drain

    from gravity_core.bus import Bus
    from gravity_core.grpc import make_channel, wait_for_serving
    from gravity_generator.service import start_generator

    settings = make_settings(
        broker=broker,
        **{
            "generator.meta_path": str(sample_files["meta_Books.jsonl"]),
            "generator.follow_topics": True,
            "generator.max_new_tokens": 12,
            "study.max_new_tokens": 12,
            "study.pipeline": "services",
        },
    )
    cfg = study_settings(settings)
    cohort: Cohort = trained["cohort"]
    bus = Bus(settings.kafka, "test-trainer")
    bus.ensure_topics()
    reader = bus.consumer(settings.kafka.topics.profiles, "test-reader", max_poll_records=50)
    running = start_generator(settings)
    pipeline = ServicesPipeline(settings, cfg.model_copy(update={}))
    try:
        wait_for_serving(make_channel(running.target), timeout_s=600)
        settings.grpc.targets["generator"] = running.target
        assert (
            pipeline.train(cohort, lambda _m: None) == {}
        )  # asynchronous: pairgen and the trainer take over
        published = drain(reader, profile_pb2.UserProfile, want=2, timeout_s=60)
        assert sorted((p.user_id, p.cohort_id, p.cohort_size) for p in published) == [
            ("study-p0", "study-test-r1", 2),
            ("study-p1", "study-test-r1", 2),
        ]
        first = pipeline.readiness("study-test-r1", {})
        assert not first.ready and "waiting for the trainer's adapter" in first.message

        ref = read_adapter_ref(Path(trained["adapter"]["path"]))
        bus.publish(settings.kafka.topics.adapters, "gravity", ref)  # what the trainer does when it is done
        deadline = time.monotonic() + 120
        ready = pipeline.readiness("study-test-r1", {})
        while not ready.ready and time.monotonic() < deadline:
            time.sleep(0.5)
            ready = pipeline.readiness("study-test-r1", {})
        assert ready.ready, ready.message
        assert ready.adapter["name"].startswith("study-test-r1-gravity")

        profile = cohort.profiles[1]
        (book,) = select_targets(profile, trained["catalog"], n=1, seed=13)
        out = pipeline.generate(
            [Request(profile, book, m) for m in ("original", "gravity")], ready.adapter, lambda _m: None
        )
        assert [g.error for g in out] == ["", ""]
        assert out[0].text == book.description
        assert out[1].adapter == ready.adapter["name"] and out[1].text.strip()
    finally:
        reader.close()
        pipeline.close()
        running.stop()
        bus.close()
