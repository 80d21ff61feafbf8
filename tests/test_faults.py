"""Fault tests with real parts: the Tansu broker, `gravity serve NAME` child processes, gRPC on 127.0.0.1.

- pairgen SIGKILLed mid-stream and restarted: the final shards hold every expected pair exactly once;
- a malformed review is dead-lettered and counted while the other readers' profiles flow;
- the generator SIGKILLed and restarted while clients wait and retry: every request is answered;
- the broker down at start: services report NOT_SERVING, then SERVING once it is up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from gravity_testing import drain, wait_until
from harness import processes_mentioning

from gravity.v1 import common_pb2, pairs_pb2, pairs_pb2_grpc, profile_pb2
from gravity_core.broker import EmbeddedBroker, free_port
from gravity_core.bus import Bus
from gravity_core.clients import GeneratorClient, ProfilerClient
from gravity_core.datasets import load_manifest, verify_shards
from gravity_core.proto_io import write_jsonl
from gravity_core.registry import service_names
from gravity_stack.ingest import choose_users, ingest_requests
from gravity_stack.processes import gravity_command

pytestmark = [pytest.mark.broker, pytest.mark.model]

PAIR_DATASETS = ["gravity", "user-sft"]


def _topics(name: str) -> dict[str, str]:
    """Per-test topic names and consumer groups: the session broker is shared."""
    out: dict[str, str] = {
        f"kafka.topics.{t}": f"gravity.{t}.{name}" for t in ("profiles", "shards", "adapters", "dlq")
    }
    out["kafka.group_prefix"] = f"test-{name}"
    return out


def _pair_ids(directory: Path) -> dict[str, Counter[str]]:
    """dataset -> how many times each pair id occurs across the manifest's (checksum-verified) shards."""
    manifest = load_manifest(directory)
    out: dict[str, Counter[str]] = {}
    for dataset in PAIR_DATASETS:
        ids: Counter[str] = Counter()
        for path in verify_shards(directory, manifest, dataset):
            ids.update(pq.read_table(path, columns=["pair_id"]).column("pair_id").to_pylist())
        out[dataset] = ids
    return out


def test_pairgen_killed_mid_stream_writes_every_pair_exactly_once(
    broker, make_stack, sample_profiles, tmp_path: Path
) -> None:
    cohort = "fault-pairgen"
    profiles = [_with_cohort(p, cohort) for p in sample_profiles]
    stack = make_stack(broker.bootstrap, **_topics("pairgen-kill"), **{"pairgen.datasets": PAIR_DATASETS})
    pairgen = stack.start("pairgen")
    stack.wait_health("pairgen", "SERVING")
    cohort_dir = Path(stack.settings.artifacts.root) / "datasets" / cohort

    def users_done() -> int:
        try:
            return len(load_manifest(cohort_dir).dataset("user-sft").shards)
        except Exception:  # not written yet, or mid-replace
            return 0

    bus = Bus(stack.settings.kafka, "fault-test")
    try:
        for profile in profiles:
            bus.publish(stack.settings.kafka.topics.profiles, profile.user_id, profile)
    finally:
        bus.close()
    wait_until(lambda: users_done() >= 1, 300, "pairgen's first shards", every_s=0.05)
    pairgen.kill(signal.SIGKILL)
    done_at_kill = users_done()
    assert done_at_kill < len(profiles), "pairgen finished before it was killed; the test proves nothing"

    stack.start("pairgen")
    stack.wait_health("pairgen", "SERVING")
    wait_until(lambda: users_done() == len(profiles), 600, "every reader's shards after the restart")

    # The same profiles built in one uninterrupted batch run give the expected pairs.
    profiles_path = tmp_path / "profiles.jsonl"
    write_jsonl(profiles, profiles_path)
    expected_dir = tmp_path / "expected"
    subprocess.run(
        gravity_command(
            "pairs",
            "build",
            "--profiles",
            str(profiles_path),
            "--out",
            str(expected_dir),
            "--datasets",
            ",".join(PAIR_DATASETS),
            config=stack.config_path,
        ),
        check=True,
        capture_output=True,
        timeout=600,
    )
    got, expected = _pair_ids(cohort_dir), _pair_ids(expected_dir)
    for dataset in PAIR_DATASETS:
        assert got[dataset], f"{dataset} is empty"
        duplicated = [pid for pid, n in got[dataset].items() if n > 1]
        assert not duplicated, f"{dataset}: {len(duplicated)} pairs written more than once"
        assert set(got[dataset]) == set(expected[dataset]), f"{dataset}: pairs differ from the batch build"
    manifest = json.loads(
        pairs_pb2_grpc.PairGenServiceStub(stack.channel("pairgen"))
        .GetManifest(pairs_pb2.GetManifestRequest(dataset_id=cohort), timeout=30)
        .manifest_json
    )
    assert {s["user_id"] for s in manifest["datasets"]["gravity"]["shards"]} == {p.user_id for p in profiles}


@pytest.mark.slow  # over a minute on 2 cores; a smaller real test of the same kind stays in the default suite
def test_two_pairgen_replicas_one_killed_mid_stream_write_every_pair_exactly_once(
    broker, make_stack, sample_profiles, tmp_path: Path
) -> None:
    """Two replicas in one consumer group over three partitions; one is SIGKILLed while it works. The other
    takes over its partitions and every pair of the batch build is written exactly once."""
    cohort = "fault-replicas"
    profiles = [_with_cohort(p, cohort) for p in sample_profiles]
    stack = make_stack(
        broker.bootstrap,
        **_topics("pairgen-replicas"),
        **{"pairgen.datasets": PAIR_DATASETS, "kafka.partitions": 3},
    )
    first = stack.start_replica("pairgen", 1)
    second = stack.start_replica("pairgen", 2)
    for process in (first, second):
        process.wait_serving(timeout_s=600, grpc_settings=stack.settings.grpc)
    cohort_dir = Path(stack.settings.artifacts.root) / "datasets" / cohort

    def users_done() -> int:
        try:
            return len(load_manifest(cohort_dir).dataset("user-sft").shards)
        except Exception:  # not written yet, or mid-replace
            return 0

    bus = Bus(stack.settings.kafka, "fault-test")
    try:
        for profile in profiles:
            bus.publish(stack.settings.kafka.topics.profiles, profile.user_id, profile)
    finally:
        bus.close()
    wait_until(lambda: users_done() >= 2, 300, "the replicas' first shards", every_s=0.05)
    first.kill(signal.SIGKILL)
    assert users_done() < len(profiles), (
        "the replicas finished before one was killed; the test proves nothing"
    )
    wait_until(lambda: users_done() == len(profiles), 900, "every reader's shards from the surviving replica")

    profiles_path = tmp_path / "profiles.jsonl"
    write_jsonl(profiles, profiles_path)
    expected_dir = tmp_path / "expected"
    subprocess.run(
        gravity_command(
            "pairs", "build", "--profiles", str(profiles_path), "--out", str(expected_dir),
            "--datasets", ",".join(PAIR_DATASETS), config=stack.config_path,
        ),
        check=True,
        capture_output=True,
        timeout=600,
    )  # fmt: skip
    got, expected = _pair_ids(cohort_dir), _pair_ids(expected_dir)
    for dataset in PAIR_DATASETS:
        assert got[dataset] and not [pid for pid, n in got[dataset].items() if n > 1], dataset
        assert set(got[dataset]) == set(expected[dataset]), f"{dataset}: pairs differ from the batch build"


def _with_cohort(profile: profile_pb2.UserProfile, cohort: str) -> profile_pb2.UserProfile:
    out = profile_pb2.UserProfile()
    out.CopyFrom(profile)
    out.cohort_id = cohort
    return out


@pytest.mark.slow  # over a minute on 2 cores; a smaller real test of the same kind stays in the default suite
def test_malformed_review_is_dead_lettered_and_counted_while_others_flow(
    broker, make_stack, sample_files, tmp_path: Path
) -> None:
    stack = make_stack(broker.bootstrap, **_topics("profiler-dlq"), **{"profiler.min_reviews": 10})
    stack.start("profiler")
    stack.wait_health("profiler", "SERVING")
    reviews = tmp_path / "Books.jsonl"
    lines = sample_files["Books.jsonl"].read_text(encoding="utf-8").splitlines()
    broken = '{"user_id": "A14YMT07TC9JFX", "rating": "five stars", "text": '  # cut off mid-record
    reviews.write_text("\n".join([*lines[:5], broken, *lines[5:]]) + "\n", encoding="utf-8")
    users = choose_users(sample_files["Books.jsonl"], sample_files["demographics.csv"], 2, 10)

    kafka = stack.settings.kafka
    bus = Bus(kafka, "fault-test")
    dlq = bus.consumer(kafka.topics.dlq, "fault-dlq")
    published = bus.consumer(kafka.topics.profiles, "fault-profiles")
    try:
        result = ProfilerClient(stack.settings.grpc.target("profiler"), stack.settings.grpc).ingest(
            ingest_requests(
                reviews, sample_files["meta_Books.jsonl"], sample_files["demographics.csv"], set(users), "dlq"
            )
        )
        assert result.lines_skipped == 1 and sum(result.skipped_by_reason.values()) == 1
        assert sorted(result.accepted_users) == sorted(users)

        letters = drain(dlq, common_pb2.DeadLetter, 1, 60)
        assert len(letters) == 1, letters
        letter = letters[0]
        assert letter.reason in result.skipped_by_reason
        assert letter.source_file.endswith("Books.jsonl") and letter.source_line == 6
        assert letter.payload == broken.encode()

        profiles = drain(published, profile_pb2.UserProfile, len(users), 600)
        assert sorted(p.user_id for p in profiles) == sorted(users)
        assert all(len(p.values) == 150 and p.personality.traits for p in profiles)
    finally:
        dlq.close()
        published.close()
        bus.close()


def test_generator_restarted_while_clients_retry_answers_every_request(
    broker, make_stack, sample_profiles, tmp_path: Path
) -> None:
    profiles_path = tmp_path / "profiles.jsonl"
    write_jsonl(sample_profiles, profiles_path)
    stack = make_stack(
        broker.bootstrap,
        **_topics("generator-restart"),
        **{
            "generator.follow_topics": False,
            "generator.profiles_path": str(profiles_path),
            "generator.max_new_tokens": 48,
        },
    )
    generator = stack.start("generator")
    stack.wait_health("generator", "SERVING")
    target = stack.settings.grpc.target("generator")
    book = sample_profiles[0].reviewed_asins[0]  # any catalog book works for every reader and method
    with GeneratorClient(target, stack.settings.grpc, timeout_s=300) as client:  # warm: the model answers
        assert client.personalize(
            user_id=sample_profiles[0].user_id, parent_asin=book, method="base-rewrite"
        ).text
    methods = ["base-rewrite", "user-summary", "demo-based"]
    jobs = [(p.user_id, methods[i % len(methods)]) for i, p in enumerate(sample_profiles[:12])]
    answers: dict[int, str] = {}
    errors: dict[int, str] = {}

    def ask(i: int, user: str, method: str) -> None:
        with GeneratorClient(target, stack.settings.grpc, timeout_s=600) as client:
            try:
                answers[i] = client.personalize(user_id=user, parent_asin=book, method=method).text
            except Exception as exc:  # recorded, then asserted on below
                errors[i] = repr(exc)

    threads = [threading.Thread(target=ask, args=(i, u, m)) for i, (u, m) in enumerate(jobs)]
    for t in threads:
        t.start()
    # 12 requests of 48 tokens in batches of 8 take seconds: half a second in, some are being generated
    # and the rest wait in the queue when the process dies
    time.sleep(0.5)
    generator.kill(signal.SIGKILL)
    unanswered_at_crash = len(jobs) - len(answers)
    generator.start()
    for t in threads:
        t.join(900)
    assert unanswered_at_crash > 0, "every request was answered before the crash; the test proves nothing"
    assert not errors, errors
    assert len(answers) == len(jobs) and all(text.strip() for text in answers.values())


@pytest.mark.slow  # over a minute on 2 cores; a smaller real test of the same kind stays in the default suite
def test_gravity_up_waits_for_a_late_broker_and_stops_cleanly(make_stack, tmp_path: Path) -> None:
    """`gravity up` against a bootstrap address with no broker behind it yet (the external-Kafka shape)."""
    port = free_port()
    stack = make_stack(f"127.0.0.1:{port}", **_topics("broker-late"))
    console = tmp_path / "up.out"
    with open(console, "w") as out:
        up = subprocess.Popen(
            gravity_command("up", "--log-dir", str(tmp_path / "logs"), config=stack.config_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for name in service_names():
            stack.wait_health(name, "NOT_SERVING")
        time.sleep(3)  # still no broker: nobody may claim to be ready
        assert {name: stack.health(name) for name in service_names()} == dict.fromkeys(
            service_names(), "NOT_SERVING"
        )
        with EmbeddedBroker(port=port):
            for name in service_names():
                stack.wait_health(name, "SERVING", timeout_s=180)
            up.send_signal(signal.SIGTERM)
            assert up.wait(90) == 0, console.read_text()
        assert not processes_mentioning(str(stack.config_path)), "services outlived gravity up"
        assert "SERVING" in console.read_text()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
