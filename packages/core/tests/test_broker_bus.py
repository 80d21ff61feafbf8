"""Embedded broker launcher and the Kafka helpers against a real Tansu process."""

import os
import threading
import time
from typing import Any

import pytest

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.broker import EmbeddedBroker
from gravity_core.bus import Bus, ConsumerLoop, decode
from gravity_core.errors import Unavailable

pytestmark = pytest.mark.broker


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_broker_start_produce_consume_stop(make_settings) -> None:
    broker = EmbeddedBroker().start()
    pid = broker.pid
    try:
        settings = make_settings(broker=broker)
        bus = Bus(settings.kafka, "test")
        bus.ensure_topics()
        topic = settings.kafka.topics.profiles
        for i in range(3):
            bus.publish(topic, f"user-{i}", profile_pb2.UserProfile(user_id=f"user-{i}", review_count=i))
        consumer = bus.consumer(topic, "reader")
        got = {}
        deadline = time.monotonic() + 40
        while len(got) < 3 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    msg = decode(r.value, profile_pb2.UserProfile, r.headers)
                    got[r.key.decode()] = msg.review_count
        consumer.commit()
        consumer.close()
        assert got == {"user-0": 0, "user-1": 1, "user-2": 2}
        bus.close()
    finally:
        broker.stop()
    assert pid is not None and not _alive(pid)


def test_consumer_loop_commits_after_handler_and_dead_letters_bad_records(broker, make_settings) -> None:
    settings = make_settings(broker=broker)
    bus = Bus(settings.kafka, "test")
    bus.ensure_topics()
    t = settings.kafka.topics
    seen: list[str] = []

    def handler(profile: profile_pb2.UserProfile, record) -> None:
        if profile.user_id == "poison":
            raise ValueError("cannot handle this one")
        seen.append(profile.user_id)

    loop = ConsumerLoop(bus, t.profiles, "loop", profile_pb2.UserProfile, handler).start()
    bus.publish(t.profiles, "a", profile_pb2.UserProfile(user_id="a"))
    bus.publish(t.profiles, "poison", profile_pb2.UserProfile(user_id="poison"))
    bus.producer().send(t.profiles, key=b"junk", value=b"\xff\xff not protobuf").get(10)
    bus.publish(t.profiles, "b", profile_pb2.UserProfile(user_id="b"))
    deadline = time.monotonic() + 60
    while (len(seen) < 2 or loop.dead_lettered < 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    loop.stop()
    assert seen == ["a", "b"] and loop.dead_lettered == 2

    dlq = bus.consumer(t.dlq, "dlq-reader")
    reasons = []
    deadline = time.monotonic() + 40
    while len(reasons) < 2 and time.monotonic() < deadline:
        for records in dlq.poll(timeout_ms=500).values():
            reasons += [decode(r.value, common_pb2.DeadLetter).reason for r in records]
    dlq.close()
    assert sorted(reasons) == ["handler_error", "undecodable"]

    # committed offsets: a new loop in the same group sees only new records
    seen.clear()
    loop2 = ConsumerLoop(bus, t.profiles, "loop", profile_pb2.UserProfile, handler).start()
    bus.publish(t.profiles, "c", profile_pb2.UserProfile(user_id="c"))
    deadline = time.monotonic() + 40
    while not seen and time.monotonic() < deadline:
        time.sleep(0.2)
    loop2.stop()
    assert seen == ["c"]
    bus.close()


def test_transient_failure_is_retried_not_dropped(broker, make_settings) -> None:
    settings = make_settings(broker=broker)
    bus = Bus(settings.kafka, "test")
    bus.ensure_topics()
    t = settings.kafka.topics
    attempts: list[str] = []
    done = threading.Event()

    def flaky(profile: profile_pb2.UserProfile, record) -> None:
        attempts.append(profile.user_id)
        if len(attempts) < 3:
            raise Unavailable("model endpoint down")
        done.set()

    loop = ConsumerLoop(bus, t.profiles, "flaky", profile_pb2.UserProfile, flaky).start()
    bus.publish(t.profiles, "x", profile_pb2.UserProfile(user_id="x"))
    assert done.wait(60)
    loop.stop()
    assert attempts == ["x", "x", "x"] and loop.dead_lettered == 0
    bus.close()


def _prepared_batches(
    broker, make_settings, group: str, parts: list[tuple[float, list[str]]], **loop_options: Any
) -> tuple[list[list[str]], list[str]]:
    """Publish ``parts`` (a pause, then profiles with these user ids) to a ConsumerLoop with ``prepare``;
    the batches ``prepare`` saw (each sorted) and the ids handled once every record was."""
    settings = make_settings(broker=broker)
    bus = Bus(settings.kafka, "test")
    bus.ensure_topics()
    t = settings.kafka.topics
    total = sum(len(users) for _, users in parts)
    prepared: list[list[str]] = []
    handled: list[str] = []
    done = threading.Event()

    def handler(profile: profile_pb2.UserProfile, record) -> None:
        handled.append(profile.user_id)
        if len(handled) == total:
            done.set()

    loop = ConsumerLoop(
        bus,
        t.profiles,
        group,
        profile_pb2.UserProfile,
        handler,
        prepare=lambda messages: prepared.append(sorted(m.user_id for m in messages)),
        **loop_options,
    ).start()
    assert loop.ready.wait(60)
    for pause_s, users in parts:
        time.sleep(pause_s)
        for user in users:
            bus.publish(t.profiles, user, profile_pb2.UserProfile(user_id=user))
    assert done.wait(60)
    loop.stop()
    bus.close()
    return prepared, sorted(handled)


def test_records_published_a_moment_apart_are_prepared_together(broker, make_settings) -> None:
    """A poll that finds fewer records than ``prepare_size`` waits a little for the rest: the profiler
    publishes a cohort's profiles together, and without the wait the first one was handled alone."""
    prepared, handled = _prepared_batches(
        broker,
        make_settings,
        "linger",
        [(0.0, ["a"]), (0.5, ["b", "c"])],
        prepare_size=8,
        prepare_linger_s=5.0,
    )
    assert prepared == [["a", "b", "c"]] and handled == ["a", "b", "c"]


def test_records_that_belong_together_are_awaited_past_the_linger(broker, make_settings) -> None:
    """``prepare_awaits`` keeps the poll waiting past ``prepare_linger_s`` while it says more records belong
    with those it has (pairgen: the rest of a cohort that two profiler replicas publish seconds apart)."""
    prepared, handled = _prepared_batches(
        broker,
        make_settings,
        "awaits",
        [(0.0, ["a", "b"]), (2.5, ["c", "d"])],
        prepare_size=8,
        prepare_linger_s=0.5,
        prepare_awaits=lambda messages: len(messages) < 4,
        prepare_await_s=30.0,
    )
    assert prepared == [["a", "b", "c", "d"]] and handled == ["a", "b", "c", "d"]


def test_unreachable_broker_is_unavailable(make_settings) -> None:
    from gravity_core.broker import free_port

    settings = make_settings(
        **{"kafka.bootstrap_servers": f"127.0.0.1:{free_port()}", "kafka.request_timeout_ms": 2000}
    )
    bus = Bus(settings.kafka, "test")
    # The callers' deadlines hold: kafka-python would otherwise wait its own 30 s to bootstrap (a readiness
    # probe that hangs for half a minute). A deadline contract, bounded far above the deadlines themselves.
    began = time.monotonic()
    assert bus.ping(timeout_s=1) is False
    assert time.monotonic() - began < 20
    began = time.monotonic()
    with pytest.raises(Unavailable):
        bus.publish("t", "k", profile_pb2.UserProfile(user_id="x"), timeout_s=3)
    assert time.monotonic() - began < 20


def test_every_kind_of_transient_failure_is_retried_with_backoff(broker, make_settings) -> None:
    import errno

    from filelock import Timeout

    from gravity_core.errors import RateLimited

    settings = make_settings(broker=broker)
    bus = Bus(settings.kafka, "test")
    bus.ensure_topics()
    t = settings.kafka.topics
    failures = [
        OSError(errno.ENOSPC, "No space left on device"),
        Timeout("/store/.manifest.lock"),
        RateLimited("HTTP 429"),
        OSError(errno.ESTALE, "Stale file handle"),
    ]
    attempts: list[str] = []
    done = threading.Event()

    def handler(profile: profile_pb2.UserProfile, record) -> None:
        attempts.append(profile.user_id)
        if failures:
            raise failures.pop(0)
        done.set()

    loop = ConsumerLoop(bus, t.profiles, "transient", profile_pb2.UserProfile, handler).start()
    bus.publish(t.profiles, "x", profile_pb2.UserProfile(user_id="x"))
    assert done.wait(90)
    loop.stop()
    assert len(attempts) == 5 and loop.dead_lettered == 0 and loop.retries == 4
    bus.close()


def test_backoff_doubles_up_to_its_cap_per_item() -> None:
    from gravity_core.bus.kafka import Backoff

    backoff = Backoff(first_s=0.5, cap_s=4.0)
    assert [backoff.next_delay("a") for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.next_delay("b") == 0.5
    backoff.clear("a")
    assert backoff.next_delay("a") == 0.5


class _FlakyDLQBus(Bus):
    """The real bus, except that the first ``failures`` dead-letter publishes fail as a broker outage would."""

    def __init__(self, *args, failures: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.failures = failures

    def publish(self, topic, key, message, timeout_s: float = 30.0):
        if topic == self.topics.dlq and self.failures > 0:
            self.failures -= 1
            raise Unavailable("publishing to the DLQ failed: broker unreachable")
        return super().publish(topic, key, message, timeout_s)


def test_a_record_is_committed_only_once_its_dead_letter_is_published(broker, make_settings) -> None:
    from gravity_core.skips import RecordError

    settings = make_settings(broker=broker)
    bus = _FlakyDLQBus(settings.kafka, "test", failures=2)
    bus.ensure_topics()
    t = settings.kafka.topics
    calls: list[str] = []

    def handler(profile: profile_pb2.UserProfile, record) -> None:
        calls.append(profile.user_id)
        raise RecordError("never_works", "this record can never be processed")

    loop = ConsumerLoop(bus, t.profiles, "dlq-flaky", profile_pb2.UserProfile, handler).start()
    bus.publish(t.profiles, "bad", profile_pb2.UserProfile(user_id="bad"))
    deadline = time.monotonic() + 60
    while loop.dead_lettered < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    loop.stop()
    # handled three times: twice its dead letter could not be published, so its offset stayed uncommitted
    assert calls == ["bad", "bad", "bad"] and loop.dead_lettered == 1 and bus.failures == 0
    dlq = bus.consumer(t.dlq, "dlq-flaky-reader")
    letters = []
    deadline = time.monotonic() + 30
    while not letters and time.monotonic() < deadline:
        for records in dlq.poll(timeout_ms=500).values():
            letters += [decode(r.value, common_pb2.DeadLetter) for r in records]
    dlq.close()
    assert [x.reason for x in letters] == ["never_works"]
    # committed now: a new loop in the group does not see it again
    calls.clear()
    again = ConsumerLoop(bus, t.profiles, "dlq-flaky", profile_pb2.UserProfile, handler).start()
    time.sleep(8)
    again.stop()
    assert calls == []
    bus.close()


def test_following_a_compacted_topic_replays_it_whole_and_leaves_no_consumer_group(
    broker, make_settings
) -> None:
    from kafka.admin import KafkaAdminClient

    from gravity_core.profiles import ProfileStore

    settings = make_settings(broker=broker)
    bus = Bus(settings.kafka, "test")
    bus.ensure_topics()
    t = settings.kafka.topics
    for i in range(3):
        bus.publish(t.profiles, f"u{i}", profile_pb2.UserProfile(user_id=f"u{i}", built_at_ms=i + 1))
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)

    def groups() -> set[str]:
        return {g["group_id"] if isinstance(g, dict) else g[0] for g in admin.list_groups()}

    groups_before = groups()
    for _boot in range(2):  # every start rebuilds the store from the beginning of the topic
        store = ProfileStore()
        loop = store.follow(bus)
        deadline = time.monotonic() + 60
        while len(store) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        loop.stop()
        assert {p.user_id for p in store} == {"u0", "u1", "u2"}
    assert groups() == groups_before
    admin.close()
    bus.close()
