"""`gravity serve pairgen` against the embedded broker: profiles in, shards + manifest + ShardRefs out."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import grpc
import pytest
from gravity_testing import drain

from gravity.v1 import common_pb2, pairs_pb2, pairs_pb2_grpc, profile_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.bus import Bus
from gravity_core.datasets import load_manifest, verify_shards
from gravity_core.grpc import make_channel, wait_for_serving
from gravity_core.llm import LLMClient
from gravity_core.service import start_in_thread
from gravity_pairgen.service import PairGenService

pytestmark = [pytest.mark.broker, pytest.mark.model]


def _copy(profile: profile_pb2.UserProfile, **changes) -> profile_pb2.UserProfile:
    out = profile_pb2.UserProfile()
    out.CopyFrom(profile)
    for key, value in changes.items():
        setattr(out, key, value)
    return out


@pytest.fixture
def service(broker, make_settings, sample_files, sample_catalog, embedder):
    settings = make_settings(
        broker=broker,
        **{
            "pairgen.datasets": ["gravity", "user-sft"],
            "pairgen.items_per_trait": 10,
            "pairgen.meta": str(sample_files["meta_Books.jsonl"]),
        },
    )
    svc = PairGenService(settings, catalog=sample_catalog, embedder=embedder)
    running = start_in_thread(svc, settings, port=0)
    channel = make_channel(running.target, settings.grpc)
    try:
        wait_for_serving(channel, timeout_s=90)
        yield svc, settings, channel
    finally:
        channel.close()
        running.stop()


def test_consumes_profiles_publishes_shard_refs_and_reprocessing_replaces(service, sample_profiles) -> None:
    _, settings, _ = service
    bus = Bus(settings.kafka, "test")
    topics = settings.kafka.topics
    refs_in = bus.consumer(topics.shards, "shard-reader")
    dlq = bus.consumer(topics.dlq, "dlq-reader")
    good = [_copy(p, cohort_id="c1", cohort_size=4) for p in sample_profiles[:3]]
    bad = _copy(sample_profiles[3], cohort_id="c1", cohort_size=4)
    del bad.values[:]  # no stances: dead-lettered, and leaves the cohort
    for profile in [good[0], bad, good[1], good[2]]:
        bus.publish(topics.profiles, profile.user_id, profile)

    refs = drain(refs_in, pairs_pb2.ShardRef, 8)
    assert len(refs) == 8
    assert {r.dataset_id for r in refs} == {"c1/gravity", "c1/user-sft"}
    by_user = {(r.user_id, r.dataset_id): r for r in refs}
    rejected = by_user[(bad.user_id, "c1/gravity")]
    assert rejected.row_count == 0 and rejected.uri == ""
    for profile in good:
        ref = by_user[(profile.user_id, "c1/gravity")]
        assert ref.shard_id == f"c1/gravity/{profile.user_id}" and ref.kind == "dpo" and ref.recipe == "full"
        assert ref.row_count == sum(ref.counts_by_facet.values()) > 0
        assert set(ref.counts_by_facet) == {"category", "summary", "values", "personality"}
        assert ref.counts_by_facet["personality"] == 50
        assert ArtifactStore(settings.artifacts.path()).verify(ref.uri, ref.sha256)
    last = refs[-2:]  # the last profile completes the cohort (4 declared - 1 rejected)
    assert all(r.dataset_complete and r.cohort_size == 3 for r in last)
    assert not any(r.dataset_complete for r in refs[:-2])

    letters = drain(dlq, common_pb2.DeadLetter, 1)
    assert [(d.service, d.reason) for d in letters] == [("pairgen", "no_stances")]
    assert bad.user_id in letters[0].detail and letters[0].source_topic == topics.profiles

    cohort_dir = settings.artifacts.path() / "datasets" / "c1"
    manifest = load_manifest(cohort_dir)
    assert manifest.users("gravity") == {p.user_id for p in good} and manifest.complete("gravity")
    verify_shards(cohort_dir, manifest, "gravity")
    accounting = json.loads((cohort_dir / "accounting.json").read_text())
    assert accounting["rejected"] == {bad.user_id: "no_stances"} and accounting["declared_cohort_size"] == 4
    before = {s.user_id: s.sha256 for s in manifest.dataset("gravity").shards}
    files_before = sorted(p.name for p in (cohort_dir / "gravity").iterdir())

    # the same profile again: its shard is rewritten in place, identical, never duplicated
    bus.publish(topics.profiles, good[0].user_id, good[0])
    again = drain(refs_in, pairs_pb2.ShardRef, 2)
    assert {r.user_id for r in again} == {good[0].user_id} and all(r.dataset_complete for r in again)
    manifest = load_manifest(cohort_dir)
    assert {s.user_id: s.sha256 for s in manifest.dataset("gravity").shards} == before
    assert sorted(p.name for p in (cohort_dir / "gravity").iterdir()) == files_before

    # the rejected user, fixed: back in the cohort, which now needs all four
    fixed = _copy(sample_profiles[3], cohort_id="c1", cohort_size=4)
    bus.publish(topics.profiles, fixed.user_id, fixed)
    last = drain(refs_in, pairs_pb2.ShardRef, 2)
    assert all(r.row_count > 0 and r.dataset_complete and r.cohort_size == 4 for r in last)
    assert load_manifest(cohort_dir).users("gravity") == {p.user_id for p in [*good, fixed]}
    refs_in.close()
    dlq.close()
    bus.close()


def test_grpc_build_pairs_and_get_manifest(service, sample_profiles) -> None:
    _, settings, channel = service
    stub = pairs_pb2_grpc.PairGenServiceStub(channel)
    profile = _copy(sample_profiles[4], cohort_id="g1", cohort_size=2)
    response = stub.BuildPairs(pairs_pb2.BuildPairsRequest(profile=profile, skip_publish=True), timeout=120)
    assert [r.dataset_id for r in response.shards] == ["g1/gravity", "g1/user-sft"]
    assert all(r.row_count > 0 and not r.dataset_complete for r in response.shards)

    ablated = stub.BuildPairs(
        pairs_pb2.BuildPairsRequest(profile=profile, recipe="no-values", skip_publish=True), timeout=120
    )
    (ref,) = ablated.shards
    assert ref.dataset_id == "g1/gravity-no-values" and ref.recipe == "no-values"
    assert "values" not in ref.counts_by_facet
    assert ref.row_count == response.shards[0].row_count - response.shards[0].counts_by_facet["values"]

    # the cohort directory carries its dataset card: datasets reads it with no other argument
    import datasets as hf

    cohort_dir = settings.artifacts.path() / "datasets" / "g1"
    default = hf.load_dataset(str(cohort_dir), split="train")
    assert default.num_rows == response.shards[0].row_count and "rejected" in default.column_names
    ablation = hf.load_dataset(str(cohort_dir), "gravity-no-values", split="train")
    assert ablation.num_rows == ref.row_count and "values" not in set(ablation["facet"])

    got = stub.GetManifest(pairs_pb2.GetManifestRequest(dataset_id="g1/gravity"), timeout=10)
    manifest = json.loads(got.manifest_json)
    assert manifest["datasets"]["gravity-no-values"]["dropped"] == ["values"]
    assert [s["user_id"] for s in manifest["datasets"]["gravity"]["shards"]] == [profile.user_id]
    assert ArtifactStore(settings.artifacts.path()).verify(got.manifest_uri, got.manifest_sha256)

    no_traits = _copy(profile)
    del no_traits.personality.traits[:]
    cases = [
        (
            pairs_pb2.BuildPairsRequest(profile=no_traits),
            grpc.StatusCode.INVALID_ARGUMENT,
            "profile.personality.traits",
        ),
        (
            pairs_pb2.BuildPairsRequest(profile=profile, recipe="no-fun"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "recipe",
        ),
        (pairs_pb2.BuildPairsRequest(), grpc.StatusCode.INVALID_ARGUMENT, "profile"),
    ]
    for request, code, field in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.BuildPairs(request, timeout=30)
        assert info.value.code() == code and field in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.GetManifest(pairs_pb2.GetManifestRequest(dataset_id="nobody"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        stub.GetManifest(pairs_pb2.GetManifestRequest(dataset_id="../etc"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.slow  # over a minute on 2 cores; a smaller real test of the same kind stays in the default suite
def test_cohorts_complete_despite_unusable_records_and_cannot_be_inflated(service, sample_profiles) -> None:
    """A record the consumer gives up on still counts in its cohort (as rejected), so the cohort completes;
    a later message naming a bigger cohort size does not keep it from completing."""
    _, settings, _ = service
    bus = Bus(settings.kafka, "test")
    topics = settings.kafka.topics
    refs_in = bus.consumer(topics.shards, "cohort-reader")
    # cohort c2, three members: two good profiles and one without a user id
    good = [_copy(p, cohort_id="c2", cohort_size=3) for p in sample_profiles[:2]]
    nameless = _copy(sample_profiles[2], cohort_id="c2", cohort_size=3, user_id="")
    # cohort c3, two members: one good profile and one record nobody can decode (its header names c3)
    third = _copy(sample_profiles[3], cohort_id="c3", cohort_size=2)
    for profile in [good[0], nameless, good[1]]:
        bus.publish(topics.profiles, profile.user_id, profile)
    bus.publish(topics.profiles, third.user_id, third)
    bus.producer().send(
        topics.profiles,
        key=b"garbled-reader",
        value=b"\xff\xfe this is not a UserProfile",
        headers=[("message-type", b"gravity.v1.UserProfile"), ("cohort-id", b"c3")],
    ).get(10)
    # cohort c4 declared with one member; a later message claims five
    first = _copy(sample_profiles[4], cohort_id="c4", cohort_size=1)
    late = _copy(sample_profiles[5], cohort_id="c4", cohort_size=5)
    bus.publish(topics.profiles, first.user_id, first)
    bus.publish(topics.profiles, late.user_id, late)

    refs = [
        r for r in drain(refs_in, pairs_pb2.ShardRef, 20, timeout_s=240) if r.dataset_id.endswith("/gravity")
    ]
    complete = {r.dataset_id.split("/")[0] for r in refs if r.dataset_complete}
    assert complete == {"c2", "c3", "c4"}, [(r.dataset_id, r.user_id, r.dataset_complete) for r in refs]
    by = {(r.dataset_id.split("/")[0], r.user_id): r for r in refs}
    assert by[("c2", good[1].user_id)].cohort_size == 2  # three declared, one rejected
    assert by[("c3", "garbled-reader")].row_count == 0 and by[("c3", "garbled-reader")].dataset_complete
    assert all(r.cohort_size == 1 for r in refs if r.dataset_id.startswith("c4/"))
    store = ArtifactStore(settings.artifacts.path())
    accounting = json.loads(store.path("datasets/c4/accounting.json").read_text())
    assert accounting["declared_cohort_size"] == 1 and accounting["size_conflicts"] == {late.user_id: 5}
    rejected = json.loads(store.path("datasets/c2/accounting.json").read_text())["rejected"]
    assert list(rejected.values()) == ["missing_user_id"]
    bus.close()


class _CountingLLM:
    """The real model, counting how many conversations each chat_batch call carries."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.batches: list[int] = []

    def chat_batch(self, conversations: Any, params: Any) -> Any:
        self.batches.append(len(conversations))
        return self.llm.chat_batch(conversations, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.llm, name)


def _pref_align_only(make_settings, broker, sample_files, **more: Any):
    """Settings for a pairgen that builds only PrefAlign pairs: one book per reader, 16-token descriptions."""
    return make_settings(
        broker=broker,
        **{
            "pairgen.datasets": ["pref-align"],
            "pairgen.pref_align_min_books": 1,
            "pairgen.pref_align_max_books": 1,
            "pairgen.pref_align_max_tokens": 16,
            "pairgen.meta": str(sample_files["meta_Books.jsonl"]),
            **more,
        },
    )


def test_profiles_arriving_together_get_their_pref_align_descriptions_in_one_batch(
    broker, make_settings, sample_files, sample_catalog, embedder, embedded_llm, sample_profiles
) -> None:
    """Profiles read in one poll are prepared together: one generation call for every reader's PrefAlign
    descriptions instead of one per reader, each of which leaves most of the model's batch empty."""
    settings = _pref_align_only(make_settings, broker, sample_files)
    bus = Bus(settings.kafka, "test")
    refs_in = bus.consumer(settings.kafka.topics.shards, "shard-reader")
    profiles = [_copy(p, cohort_id="c3", cohort_size=3) for p in sample_profiles[:3]]
    for profile in profiles:  # all on the topic before pairgen reads it: one poll holds them
        bus.publish(settings.kafka.topics.profiles, profile.user_id, profile)
    counting = _CountingLLM(embedded_llm)
    svc = PairGenService(settings, catalog=sample_catalog, embedder=embedder, llm=cast(LLMClient, counting))
    running = start_in_thread(svc, settings, port=0)
    try:
        refs = drain(refs_in, pairs_pb2.ShardRef, 3, timeout_s=180)
    finally:
        running.stop()
        refs_in.close()
        bus.close()
    assert {r.user_id for r in refs} == {p.user_id for p in profiles}
    assert any(r.dataset_complete for r in refs)  # the last one handled (partitions interleave)
    # 3 readers x 1 book x (aligned, misaligned), generated in one call
    assert counting.batches == [6]


def test_a_cohort_published_seconds_apart_still_gets_one_pref_align_batch(
    broker, make_settings, sample_files, sample_catalog, embedder, embedded_llm, sample_profiles
) -> None:
    """Two profiler replicas publish one cohort's profiles seconds apart (past the poll's one-second linger):
    the consumer waits for the rest of the cohort, up to ``cohort_wait_s``, so the PrefAlign descriptions
    still go out in one batch; a member that never comes costs that wait, not the others' pairs."""
    settings = _pref_align_only(make_settings, broker, sample_files, **{"pairgen.cohort_wait_s": 8.0})
    bus = Bus(settings.kafka, "test")
    topics = settings.kafka.topics
    refs_in = bus.consumer(topics.shards, "shard-reader")
    counting = _CountingLLM(embedded_llm)
    svc = PairGenService(settings, catalog=sample_catalog, embedder=embedder, llm=cast(LLMClient, counting))
    running = start_in_thread(svc, settings, port=0)
    channel = make_channel(running.target, settings.grpc)
    try:
        wait_for_serving(channel, timeout_s=90)  # consuming: each part arrives on its own
        apart = [_copy(p, cohort_id="c5", cohort_size=3) for p in sample_profiles[:3]]
        for profile in apart[:2]:
            bus.publish(topics.profiles, profile.user_id, profile)
        time.sleep(3.0)
        bus.publish(topics.profiles, apart[2].user_id, apart[2])
        refs = drain(refs_in, pairs_pb2.ShardRef, 3, timeout_s=180)
        assert {r.user_id for r in refs} == {p.user_id for p in apart}
        assert counting.batches == [6]  # 3 readers x (aligned, misaligned) in one call

        # a cohort of 3 whose third profile never comes: the two are handled once the wait is over
        counting.batches.clear()
        waiting = [_copy(p, cohort_id="c6", cohort_size=3) for p in sample_profiles[3:5]]
        for profile in waiting:
            bus.publish(topics.profiles, profile.user_id, profile)
        refs = drain(refs_in, pairs_pb2.ShardRef, 2, timeout_s=180)
        assert {r.user_id for r in refs} == {p.user_id for p in waiting}
        assert counting.batches == [4]
    finally:
        channel.close()
        running.stop()
        refs_in.close()
        bus.close()
