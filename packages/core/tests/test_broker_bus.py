"""Embedded broker launcher and the Kafka helpers against a real Tansu process."""

import os
import threading
import time

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


def test_unreachable_broker_is_unavailable(make_settings) -> None:
    from gravity_core.broker import free_port

    settings = make_settings(
        **{"kafka.bootstrap_servers": f"127.0.0.1:{free_port()}", "kafka.request_timeout_ms": 2000}
    )
    bus = Bus(settings.kafka, "test")
    assert bus.ping(timeout_s=1) is False
    with pytest.raises(Unavailable):
        bus.publish("t", "k", profile_pb2.UserProfile(user_id="x"), timeout_s=3)
