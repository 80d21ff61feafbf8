"""The profiler's durable work queue (store.py) as several replicas share it: an ingest's cohort appears at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gravity_testing import another_process_churning, first_failure

from gravity.v1 import profile_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_profiler.store import ProfilerStore


def _store(tmp_path: Path) -> ProfilerStore:
    return ProfilerStore(ArtifactStore(tmp_path / "artifacts"))


def _requests(cohort: str, users: list[str]) -> list[profile_pb2.BuildProfileRequest]:
    return [
        profile_pb2.BuildProfileRequest(user_id=u, cohort_id=cohort, cohort_size=len(users)) for u in users
    ]


def test_a_cohort_is_queued_all_at_once(tmp_path: Path) -> None:
    """While an ingest writes its requests, another replica polling the queue sees none of them, then all: a
    poll mid-ingest would otherwise claim the first few alone and split the cohort's batch."""
    store = _store(tmp_path)
    seen_while_writing: list[int] = []

    def writing() -> Iterator[profile_pb2.BuildProfileRequest]:
        for request in _requests("c1", ["u1", "u2", "u3", "u4"]):
            yield request
            seen_while_writing.append(len(store.pending()))

    assert store.enqueue_cohort("replica-a", "c1", writing()) == 4
    assert seen_while_writing == [0, 0, 0, 0]
    queued = store.pending()
    assert len(queued) == 4
    assert sorted(store.load_pending(item).user_id for item in queued) == ["u1", "u2", "u3", "u4"]
    assert not list((store.root / "staging").rglob("*.pb"))


def test_a_cohort_with_queued_work_gets_the_rest_added(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.enqueue_cohort("replica-a", "c1", _requests("c1", ["u1", "u2"]))
    claimed = store.claim("replica-b", limit=1)  # one is being built; the other still waits
    store.enqueue_cohort("replica-a", "c1", _requests("c1", ["u2", "u3"]))  # a re-send plus a new reader
    waiting = sorted(store.load_pending(item).user_id for item in store.pending())
    assert len(claimed) == 1 and waiting == sorted(
        {"u1", "u2", "u3"} - {store.load_pending(claimed[0]).user_id}
    )


def test_an_ingest_a_dead_replica_was_staging_is_dropped_and_a_live_ones_kept(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for owner in ("dead", "alive"):
        stage = store.root / "staging" / owner / "c1"
        stage.mkdir(parents=True)
        (stage / "u1.pb").write_bytes(_requests("c1", ["u1"])[0].SerializeToString())
    live = _store(tmp_path)
    live.open_claims("alive")  # holds its lock, as a running replica does
    assert store.release_orphans() == 0  # a staged ingest is not queued work: its client retries
    assert not (store.root / "staging" / "dead").exists()
    assert (store.root / "staging" / "alive" / "c1" / "u1.pb").is_file()
    assert store.pending() == [] and not (store.root / "claimed" / "dead.lock").exists()


def test_listing_the_queue_while_another_replica_empties_cohorts_never_fails(tmp_path: Path) -> None:
    """A replica that claims a cohort's last item removes the cohort's directory; another replica listing the
    queue at that moment must see the cohort or not, never fail (that error ended its worker thread)."""
    store = _store(tmp_path)
    store.open_claims("replica-b")

    def list_the_queue() -> None:
        store.pending()
        store.release_orphans()

    with another_process_churning(store.root / "pending") as other:
        # unfixed, one of the first ~50-250 listings failed
        failure = first_failure(list_the_queue, seconds=3)
    assert failure is None, f"listing {failure[0]} failed: {failure[1]!r}"
    assert other.exitcode == 0
