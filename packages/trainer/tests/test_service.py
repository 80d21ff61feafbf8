"""The trainer service on the embedded broker: ShardRef in, AdapterRef out; Submit/Status/ListAdapters over gRPC."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gravity.v1 import common_pb2, pairs_pb2, training_pb2, training_pb2_grpc
from gravity_core.adapters import ADAPTER_META
from gravity_core.artifacts import ArtifactStore, sha256_dir
from gravity_core.bus import Bus
from gravity_core.datasets import load_manifest, manifest_sha256
from gravity_core.grpc import make_channel, wait_for_serving
from gravity_core.names import method_name
from gravity_trainer.runs import RunRecord, RunStore
from gravity_trainer.service import start_trainer

TINY = {
    "max_steps": 1,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 1,
    "max_eval_rows": 1,
}


def _read(broker: Any, topic: str, cls: type, count: int, timeout_s: float) -> list[Any]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=2000
    )
    consumer.assign([TopicPartition(topic, 0)])
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < count and time.monotonic() < deadline:
            for record in consumer:
                found.append(cls.FromString(record.value))
                if len(found) >= count:
                    break
    finally:
        consumer.close()
    return found


def _dataset_in_store(make_pairs: Callable[..., Path], store: ArtifactStore) -> Path:
    source = make_pairs({"gravity": 4})
    target = store.path("datasets/test")
    shutil.copytree(source, target)
    return target


def _copy(store: ArtifactStore, pairs: Path, name: str, created_at_ms: int) -> Path:
    """A copy of the dataset under another manifest, so another run."""
    copy = store.path(f"datasets/{name}")
    shutil.copytree(pairs, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["created_at_ms"] = created_at_ms
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def _broken_copy(store: ArtifactStore, pairs: Path, name: str, created_at_ms: int) -> Path:
    """A copy whose manifest reads fine but one shard does not match it: the run fails after it was queued."""
    broken = _copy(store, pairs, name, created_at_ms)
    (broken / "gravity" / "A1JAPAN.parquet").write_bytes(b"tampered")
    return broken


@pytest.mark.broker
@pytest.mark.model
def test_shard_ref_to_adapter_ref_and_grpc(
    broker: Any, make_settings: Callable[..., Any], make_pairs: Callable[..., Path]
) -> None:
    settings = make_settings(broker=broker, **{"trainer.overrides": {"gravity-dpo": TINY}})
    store = ArtifactStore.from_settings(settings)
    pairs = _dataset_in_store(make_pairs, store)
    sha = manifest_sha256(load_manifest(pairs))
    ref = pairs_pb2.ShardRef(
        shard_id="test/gravity/A3INDIA",
        dataset_id="test/gravity",
        kind="dpo",
        manifest_uri=store.uri(pairs / "manifest.json"),
        manifest_sha256=sha,
        dataset_complete=True,
        cohort_size=3,
    )
    broken = _broken_copy(store, pairs, "broken", created_at_ms=2)

    running = start_trainer(settings)
    channel = make_channel(running.target)
    stub = training_pb2_grpc.TrainerServiceStub(channel)
    bus = Bus(settings.kafka, "test")
    try:
        wait_for_serving(channel, timeout_s=120)
        # bad requests are answered at once, naming the field
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(training_pb2.SubmitRequest(dataset="no/such", recipe="gravity-dpo"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "dataset" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            stub.Submit(
                training_pb2.SubmitRequest(
                    dataset="test/gravity", recipe="gravity-dpo", overrides={"beta": "-1"}
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "recipe.beta" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Status(training_pb2.StatusRequest(run_id="nope")))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        # a run that fails is reported (Status FAILED with the reason, a dead letter) and the service goes on
        failing = stub.Submit(training_pb2.SubmitRequest(dataset=str(broken), recipe="gravity-dpo"))
        assert failing.state == training_pb2.RUN_STATE_QUEUED
        final = list(stub.Status(training_pb2.StatusRequest(run_id=failing.run_id), timeout=300))[-1]
        assert final.state == training_pb2.RUN_STATE_FAILED
        assert "does not match its manifest checksum" in final.message

        # a stale ShardRef (its manifest changed since) is dead-lettered; the complete one trains; a replay does not
        stale = pairs_pb2.ShardRef()
        stale.CopyFrom(ref)
        stale.manifest_sha256 = "0" * 64
        bus.publish(settings.kafka.topics.shards, stale.shard_id, stale)
        bus.publish(settings.kafka.topics.shards, ref.shard_id, ref)
        bus.publish(settings.kafka.topics.shards, ref.shard_id, ref)

        published = _read(broker, settings.kafka.topics.adapters, training_pb2.AdapterRef, 1, 600)
        assert len(published) == 1, "no AdapterRef within 10 minutes"
        adapter = published[0]
        assert (method_name(adapter), adapter.recipe, adapter.dataset_id) == (
            "gravity",
            "gravity-dpo",
            "test/gravity",
        )
        assert (
            adapter.dataset_manifest_sha256 == sha
            and adapter.steps == 1
            and "eval_rewards/accuracies" in adapter.metrics
        )
        stored = store.resolve(adapter.uri)
        assert stored == store.path(f"adapters/{adapter.adapter_id}")
        assert adapter.sha256 == sha256_dir(stored, exclude=(ADAPTER_META,))
        assert "eval_rewards/accuracies" in (stored / "README.md").read_text()

        # Submit of the same dataset and recipe finds the same run; its Status stream ends SUCCEEDED with the ref
        again = stub.Submit(training_pb2.SubmitRequest(dataset="test/gravity", recipe="gravity-dpo"))
        statuses = list(stub.Status(training_pb2.StatusRequest(run_id=again.run_id), timeout=120))
        assert statuses[-1].state == training_pb2.RUN_STATE_SUCCEEDED
        assert statuses[-1].adapter.adapter_id == adapter.adapter_id
        listed = stub.ListAdapters(training_pb2.ListAdaptersRequest())
        assert [a.adapter_id for a in listed.adapters] == [adapter.adapter_id]

        letters = _read(broker, settings.kafka.topics.dlq, common_pb2.DeadLetter, 2, 60)
        assert sorted(d.reason for d in letters) == ["manifest_checksum_mismatch", "training_failed"]
        assert all(d.service == "trainer" for d in letters)

        time.sleep(3)  # the replayed ShardRef had time to be consumed: still one successful run, one failed
        states = sorted(r.state for r in RunStore(store.root / "trainer").all())
        assert states == ["failed", "succeeded"]
        assert len(_read(broker, settings.kafka.topics.adapters, training_pb2.AdapterRef, 2, 5)) == 1
    finally:
        bus.close()
        channel.close()
        running.stop()


def _zygotes() -> list[int]:
    from gravity_trainer.warm import FORK_RUNS

    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if FORK_RUNS.encode() in argv and b"gravity_trainer.launch" in argv:
            found.append(int(proc.name))
    return found


@contextlib.contextmanager
def _trainer_with_two_datasets(
    broker: Any,
    make_settings: Callable[..., Any],
    make_pairs: Callable[..., Path],
    copy: Callable[..., Path],
    **config: Any,
) -> Iterator[tuple[Any, Any, list[str]]]:
    """A running trainer service (stub, worker) and two copies of one dataset (``copy``), so two runs."""
    settings = make_settings(broker=broker, **{"trainer.overrides": {"gravity-dpo": TINY}, **config})
    store = ArtifactStore.from_settings(settings)
    pairs = _dataset_in_store(make_pairs, store)
    datasets = [str(copy(store, pairs, f"copy-{n}", created_at_ms=n)) for n in (1, 2)]
    running = start_trainer(settings)
    channel = make_channel(running.target)
    try:
        wait_for_serving(channel, timeout_s=120)
        yield training_pb2_grpc.TrainerServiceStub(channel), running.service.worker, datasets  # type: ignore[attr-defined]
    finally:
        channel.close()
        running.stop()


@pytest.mark.broker
@pytest.mark.model
def test_runs_are_forked_from_one_process_that_imported_once(
    broker: Any, make_settings: Callable[..., Any], make_pairs: Callable[..., Path]
) -> None:
    """gravity_trainer.warm: every run gets a process of its own, forked from the one zygote that imported the
    training stack; each run writes to its own log, and the zygote does not outlive the service."""
    seen: list[tuple[int, bool, int]] = []  # (run pid, forked by the zygote, zygote pid)
    # two datasets whose shards do not match their manifests: each run fails fast
    with _trainer_with_two_datasets(broker, make_settings, make_pairs, _broken_copy) as (
        stub,
        worker,
        datasets,
    ):
        runs = [stub.Submit(training_pb2.SubmitRequest(dataset=d, recipe="gravity-dpo")) for d in datasets]
        for run in runs:
            final = list(stub.Status(training_pb2.StatusRequest(run_id=run.run_id), timeout=300))[-1]
            # the reason comes from the run's own log, written by the forked process
            assert final.state == training_pb2.RUN_STATE_FAILED
            assert "does not match its manifest checksum" in final.message
            assert worker.last_child is not None and worker._zygote is not None
            seen.append((*worker.last_child, worker._zygote.pid))
        assert _zygotes() == [seen[0][2]]
    assert [forked for _, forked, _ in seen] == [True, True]
    assert seen[0][0] != seen[1][0] and seen[0][2] == seen[1][2]  # a process per run, one zygote for both
    assert worker._zygote is None and not _zygotes()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.broker
@pytest.mark.model
def test_concurrent_runs_train_side_by_side_in_processes_of_their_own(
    broker: Any, make_settings: Callable[..., Any], make_pairs: Callable[..., Path]
) -> None:
    """[trainer] concurrent_runs = 2: two queued runs are running at the same moment, each in its own process
    forked from the one zygote, and each ends with its own adapter."""
    together: dict[str, int] = {}
    parents: set[int] = set()
    config = {"trainer.concurrent_runs": 2}
    with _trainer_with_two_datasets(broker, make_settings, make_pairs, _copy, **config) as (
        stub,
        worker,
        datasets,
    ):
        runs = [stub.Submit(training_pb2.SubmitRequest(dataset=d, recipe="gravity-dpo")) for d in datasets]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not together:
            now = worker.running()
            if len(now) == 2:
                together, parents = now, {_parent(pid) for pid in now.values()}
            elif all(r.terminal for r in worker.runs.all()):
                break
            time.sleep(0.1)
        finals = [
            list(stub.Status(training_pb2.StatusRequest(run_id=r.run_id), timeout=600))[-1] for r in runs
        ]
        zygote = worker._zygote.pid if worker._zygote is not None else None
    assert set(together) == {r.run_id for r in runs}, "the two runs never trained at the same time"
    assert len(set(together.values())) == 2 and parents == {zygote}
    assert [f.state for f in finals] == [training_pb2.RUN_STATE_SUCCEEDED] * 2, [f.message for f in finals]
    assert len({f.adapter.adapter_id for f in finals}) == 2
    assert all(f.adapter.steps == 1 for f in finals)
    assert not _zygotes()


def test_a_run_is_claimed_by_one_worker_slot_only(tmp_path: Path) -> None:
    """Slots side by side claim distinct runs, oldest first, and each claim marks its run RUNNING."""
    import threading

    store = RunStore(tmp_path)
    for n in range(6):
        store.put(
            RunRecord(
                run_id=f"r{n}",
                pairs_dir="/p",
                dataset="gravity",
                recipe="gravity-dpo",
                manifest_sha256="s",
                created_at_ms=n,
            )
        )
    claimed: list[str] = []
    start = threading.Barrier(4)

    def claim() -> None:
        start.wait()
        while (record := store.claim_next()) is not None:
            claimed.append(record.run_id)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == [f"r{n}" for n in range(6)]  # every run once, none twice
    assert {(r.state, r.attempts) for r in store.all()} == {("running", 1)}
    assert store.claim_next() is None


def test_a_run_that_starts_while_the_worker_stops_is_stopped_too(tmp_path: Path) -> None:
    """stop() terminates the runs it sees; a slot whose run process started just after that stops its own."""
    import subprocess

    from gravity_trainer.settings import TrainerSettings
    from gravity_trainer.worker import RunWorker

    worker = RunWorker(RunStore(tmp_path), None, None, TrainerSettings(), "base", tmp_path)  # type: ignore[arg-type]
    late = subprocess.Popen(["sleep", "60"], start_new_session=True)

    def start_as_the_worker_stops(*_: Any) -> subprocess.Popen[bytes]:
        worker._stop.set()
        return late

    worker._start_child = start_as_the_worker_stops  # type: ignore[method-assign]
    record = RunRecord(
        run_id="r", pairs_dir="/p", dataset="gravity", recipe="gravity-dpo", manifest_sha256="s"
    )
    try:
        worker._run_child(record, tmp_path / "out", tmp_path / "progress.jsonl", tmp_path / "train.log")
        assert late.poll() is not None, "the run kept running after the worker stopped"
    finally:
        late.kill()
        late.wait()


def test_stop_ends_every_running_run_and_leaves_it_to_resume(tmp_path: Path) -> None:
    """Two slots, two runs in real processes: stop() ends both and their records stay RUNNING."""
    import subprocess

    from gravity_trainer.settings import TrainerSettings
    from gravity_trainer.worker import RunWorker

    store = RunStore(tmp_path)
    for n in range(2):
        store.put(
            RunRecord(
                run_id=f"r{n}", pairs_dir="/p", dataset="gravity", recipe="gravity-dpo", manifest_sha256="s"
            )
        )
    section = TrainerSettings(concurrent_runs=2, warm_start=False)
    worker = RunWorker(store, None, None, section, "base", tmp_path)  # type: ignore[arg-type]
    started: list[subprocess.Popen[bytes]] = []

    def sleeper(*_: Any) -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen(["sleep", "60"], start_new_session=True))
        return started[-1]

    worker._start_child = sleeper  # type: ignore[method-assign]
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while len(worker.running()) < 2:
            assert time.monotonic() < deadline, "the two runs never ran together"
            time.sleep(0.05)
        worker.stop(timeout_s=5)
        assert [p.poll() is not None for p in started] == [True, True]
        assert [r.state for r in store.all()] == ["running", "running"]
    finally:
        for process in started:
            process.kill()
            process.wait()


def test_runs_survive_a_restart(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.put(
        RunRecord(
            run_id="r1",
            pairs_dir="/p",
            dataset="gravity",
            recipe="gravity-dpo",
            manifest_sha256="s",
            state="running",
            step=3,
        )
    )
    store.put(
        RunRecord(run_id="r2", pairs_dir="/p", dataset="user-sft", recipe="user-sft", manifest_sha256="s")
    )
    (tmp_path / "runs" / "garbage.json").write_text("{not json")
    reopened = RunStore(tmp_path)
    assert [r.run_id for r in reopened.recover()] == ["r1"]
    queued = reopened.next_queued()
    assert queued is not None and queued.run_id == "r1" and queued.step == 3
    assert json.loads((tmp_path / "runs" / "r1.json").read_text())["state"] == "queued"
    assert {r.run_id for r in reopened.all()} == {"r1", "r2"}


@pytest.mark.broker
def test_hostile_ids_and_uris_never_reach_outside_the_store(
    broker: Any, make_settings: Callable[..., Any], make_pairs: Callable[..., Path], tmp_path: Path
) -> None:
    """Ids that would become paths and URIs that point elsewhere are refused before anything is touched."""
    settings = make_settings(broker=broker)
    store = ArtifactStore.from_settings(settings)
    _dataset_in_store(make_pairs, store)
    sentinel = store.path("profiler/keep.txt")
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text("precious")
    outside = make_pairs({"gravity": 2})  # a valid pairs directory, but not in the store
    assert store.root not in outside.resolve().parents
    running = start_trainer(settings)
    channel = make_channel(running.target)
    stub = training_pb2_grpc.TrainerServiceStub(channel)
    bus = Bus(settings.kafka, "test")

    def refused(call: Callable[[], Any], field: str) -> None:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert field in err.value.details()

    try:
        wait_for_serving(channel, timeout_s=120)
        for adapter_id in ("../profiler", "..", "a/b", "/etc", ".hidden", "x" * 200):
            refused(
                lambda a=adapter_id: stub.Submit(
                    training_pb2.SubmitRequest(dataset="test/gravity", recipe="gravity-dpo", adapter_id=a)
                ),
                "adapter_id",
            )
        for dataset in (str(outside), outside.as_uri(), "../../etc", "file://evil.example/x", "s3://b/k"):
            refused(
                lambda d=dataset: stub.Submit(training_pb2.SubmitRequest(dataset=d, recipe="gravity-dpo")),
                "dataset",
            )
        for run_id in ("../../../etc/passwd", "../runs/x", "/tmp/x"):
            refused(lambda r=run_id: list(stub.Status(training_pb2.StatusRequest(run_id=r))), "run_id")
        # a ShardRef whose manifest lies outside the store: dead-lettered, no run queued
        ref = pairs_pb2.ShardRef(
            shard_id="evil/gravity/u",
            dataset_id="evil/gravity",
            kind="dpo",
            manifest_uri=(outside / "manifest.json").as_uri(),
            manifest_sha256=manifest_sha256(load_manifest(outside)),
            dataset_complete=True,
            cohort_size=1,
        )
        bus.publish(settings.kafka.topics.shards, ref.shard_id, ref)
        letters = _read(broker, settings.kafka.topics.dlq, common_pb2.DeadLetter, 1, 60)
        assert [d.reason for d in letters] == ["bad_uri"] and "outside the artifact store" in letters[
            0
        ].detail
        assert RunStore(store.root / "trainer").all() == []
        assert sentinel.read_text() == "precious" and not store.path("adapters").exists()
    finally:
        bus.close()
        channel.close()
        running.stop()


@pytest.mark.broker
def test_a_shard_ref_that_arrives_before_its_manifest_waits_for_it(
    broker: Any, make_settings: Callable[..., Any], make_pairs: Callable[..., Path]
) -> None:
    """On a shared volume the ref can beat the manifest: it is retried, not dead-lettered."""
    settings = make_settings(broker=broker, **{"trainer.overrides": {"gravity-dpo": TINY}})
    store = ArtifactStore.from_settings(settings)
    source = make_pairs({"gravity": 4})
    target = store.path("datasets/late")
    ref = pairs_pb2.ShardRef(
        shard_id="late/gravity/A3INDIA",
        dataset_id="late/gravity",
        kind="dpo",
        manifest_uri=store.uri(target / "manifest.json"),
        manifest_sha256=manifest_sha256(load_manifest(source)),
        dataset_complete=True,
        cohort_size=3,
    )
    running = start_trainer(settings)
    bus = Bus(settings.kafka, "test")
    try:
        bus.publish(settings.kafka.topics.shards, ref.shard_id, ref)
        deadline = time.monotonic() + 60
        while running.service.loop is None or running.service.loop.retries < 2:
            assert time.monotonic() < deadline, "the early ShardRef was not retried"
            time.sleep(0.2)
        shutil.copytree(source, target)  # the manifest becomes visible
        runs = RunStore(store.root / "trainer")
        deadline = time.monotonic() + 120
        while not runs.all():
            assert time.monotonic() < deadline, "no run was queued once the manifest appeared"
            time.sleep(0.2)
        assert running.service.loop.dead_lettered == 0
    finally:
        bus.close()
        running.stop()


def test_queueing_a_run_does_not_import_the_training_stack(
    make_settings: Callable[..., Any], make_pairs: Callable[..., Path]
) -> None:
    """Submit validates and queues in the service process; torch and transformers belong to the forked runs.
    Importing them there took 11 s on an idle 2-core machine (26 s in the demo, beside a decoding generator),
    and every first run of a service waited for it."""
    import subprocess
    import sys

    # the model stack tests/test_service_imports.py keeps out of every service's start
    heavy = ("torch", "transformers", "peft", "trl", "sentence_transformers")
    settings = make_settings()
    store = ArtifactStore.from_settings(settings)
    pairs = _dataset_in_store(make_pairs, store)
    script = (
        "import sys\n"
        "from gravity_core.config import load_settings\n"
        "from gravity_trainer.app import TrainerApp\n"
        f"settings = load_settings(None, env={{}}, overrides={{'artifacts.root': {str(store.root)!r}}})\n"
        f"record, created = TrainerApp(settings).submit({str(pairs)!r}, 'gravity', 'gravity-dpo', {{}})\n"
        f"print(record.state, created, sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["queued", "True", "[]"]
