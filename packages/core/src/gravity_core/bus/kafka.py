"""Kafka on kafka-python, correct on Apache Kafka and on the embedded Tansu broker.

* Publishing waits for ``acks=all`` so a returned publish is durable.
* :class:`ConsumerLoop` commits a record's offset only after its handler returned, i.e. after the output
  was durably written; handlers are idempotent by key, so a crash replays without duplicating.
* A record the handler can never process goes to the dead-letter topic with the reason, then is committed:
  the stream never stops on a bad record and nothing is dropped silently. A transient failure (a dependency
  down or rate-limiting, a full disk, a held lock, a refused API key: :func:`~gravity_core.errors.is_transient`)
  is retried from the same offset with exponential backoff instead, and so is a record whose dead letter
  could not be published: its offset is committed only once the dead letter is durable.
* Nothing relies on end offsets or lag, which Tansu under-reports.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from gravity.v1 import common_pb2
from gravity_core.bus.serde import decode, encode
from gravity_core.config import KafkaSettings
from gravity_core.errors import Unavailable, is_transient
from gravity_core.logging import get_logger
from gravity_core.metrics import CONSUMER_LAG, RECORDS
from gravity_core.skips import RecordError, Skip

M = TypeVar("M", bound=Message)
_LAG_EVERY_S = 5.0
log = get_logger(__name__)


def _security(settings: KafkaSettings) -> dict[str, Any]:
    out: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.sasl_mechanism:
        out["sasl_mechanism"] = settings.sasl_mechanism
        out["sasl_plain_username"] = settings.sasl_username
        out["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    if settings.ssl_cafile:
        out["ssl_cafile"] = settings.ssl_cafile
    return out


def dead_letter(
    service: str,
    reason: str,
    detail: str,
    *,
    topic: str = "",
    partition: int = -1,
    offset: int = -1,
    source_file: str = "",
    source_line: int = 0,
    key: bytes | None = None,
    payload: bytes | None = None,
) -> common_pb2.DeadLetter:
    return common_pb2.DeadLetter(
        service=service,
        reason=reason,
        detail=detail[:4000],
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        source_file=source_file,
        source_line=source_line,
        key=key or b"",
        payload=payload or b"",
        failed_at_ms=int(time.time() * 1000),
    )


class Bus:
    """One service's connection to Kafka: a lazily connected producer, topic setup, consumers."""

    def __init__(self, settings: KafkaSettings, service: str) -> None:
        self.settings = settings
        self.service = service
        self._producer: Any = None
        self._lock = threading.Lock()

    @property
    def topics(self) -> Any:
        return self.settings.topics

    def _common(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.settings.bootstrap_servers.split(","),
            "client_id": f"{self.settings.client_id}-{self.service}",
            "request_timeout_ms": self.settings.request_timeout_ms,
            **_security(self.settings),
        }

    # ------------------------------------------------------------ producer
    def producer(self, timeout_s: float | None = None) -> Any:
        """The shared producer, connecting it first (within ``timeout_s``, else request_timeout_ms)."""
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        with self._lock:
            if self._producer is None:
                try:
                    self._producer = KafkaProducer(
                        acks="all",
                        retries=5,
                        max_in_flight_requests_per_connection=1,
                        linger_ms=5,
                        max_request_size=16 * 1024 * 1024,
                        # kafka-python waits 30 s to bootstrap and 60 s in send() for metadata by default,
                        # whatever deadline the caller gave: bound both by ours.
                        bootstrap_timeout_ms=(
                            int(timeout_s * 1000) if timeout_s else self.settings.request_timeout_ms
                        ),
                        max_block_ms=self.settings.request_timeout_ms,
                        **self._common(),
                    )
                except KafkaError as exc:
                    raise Unavailable(
                        f"Kafka at {self.settings.bootstrap_servers} is unavailable: {exc}"
                    ) from exc
            return self._producer

    def publish(self, topic: str, key: str, message: Message, timeout_s: float = 30.0) -> tuple[int, int]:
        """Publish and wait for the broker's acknowledgement; returns (partition, offset)."""
        from kafka.errors import KafkaError

        value, headers = encode(message)
        try:
            meta = (
                self.producer(timeout_s)
                .send(topic, key=key.encode("utf-8"), value=value, headers=headers)
                .get(timeout=timeout_s)
            )
        except KafkaError as exc:
            raise Unavailable(f"publishing to {topic} failed: {exc}") from exc
        return meta.partition, meta.offset

    def publish_dead_letter(self, record: common_pb2.DeadLetter, required: bool = True) -> None:
        """Publish to the DLQ. When that fails the record is logged and, if ``required`` (a consumer that must
        not commit the offset without it), Unavailable is raised so the caller retries; a notification whose
        subject is kept durably elsewhere (a failed run's record, a moved file) passes ``required=False``."""
        try:
            self.publish(self.topics.dlq, f"{record.service}:{record.reason}", record)
        except Unavailable as exc:
            log.error(
                "dead_letter_unpublished",
                reason=record.reason,
                detail=record.detail,
                source_file=record.source_file,
                source_line=record.source_line,
                source_topic=record.source_topic,
                source_offset=record.source_offset,
                error=str(exc),
            )
            if required:
                raise
        log.warning(
            "dead_lettered",
            reason=record.reason,
            detail=record.detail[:300],
            source=record.source_file or record.source_topic,
            line=record.source_line,
            offset=record.source_offset,
        )

    def skip_to_dlq(self, skip: Skip, payload: bytes | None = None) -> None:
        """Adapter for :class:`~gravity_core.skips.SkipLog` hooks in service mode (the skip is also counted and
        reported to the caller, so an unpublished dead letter is logged, not raised)."""
        self.publish_dead_letter(
            dead_letter(
                self.service,
                skip.reason,
                skip.detail,
                source_file=skip.source,
                source_line=skip.line,
                key=skip.record_id.encode() or None,
                payload=payload,
            ),
            required=False,
        )

    # -------------------------------------------------------------- admin
    def ensure_topics(self) -> None:
        """Create the four topics when missing (profiles compacted by key). No-op when create_topics is off."""
        if not self.settings.create_topics:
            return
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        t = self.topics
        try:
            admin = KafkaAdminClient(**self._common())
        except KafkaError as exc:
            raise Unavailable(f"Kafka at {self.settings.bootstrap_servers} is unavailable: {exc}") from exc
        try:
            existing = set(admin.list_topics())
            wanted = []
            for name in (t.profiles, t.shards, t.adapters, t.dlq):
                if name in existing:
                    continue
                configs = {"cleanup.policy": "compact"} if name == t.profiles else {}
                wanted.append(
                    NewTopic(
                        name,
                        num_partitions=self.settings.partitions,
                        replication_factor=self.settings.replication_factor,
                        topic_configs=configs,
                    )
                )
            for topic in wanted:
                try:
                    admin.create_topics([topic])
                except TopicAlreadyExistsError:
                    pass
                except KafkaError as exc:
                    if "already exists" not in str(exc).lower():
                        raise Unavailable(f"creating topic {topic.name} failed: {exc}") from exc
        finally:
            admin.close()

    def ping(self, timeout_s: float = 5.0) -> bool:
        """True when the cluster answers a metadata request."""
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            ms = int(timeout_s * 1000)
            admin = KafkaAdminClient(
                **{**self._common(), "request_timeout_ms": ms, "bootstrap_timeout_ms": ms}
            )
        except (KafkaError, OSError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def wait_until_ready(
        self, stop: threading.Event | None = None, on_retry: Callable[[float], None] | None = None
    ) -> bool:
        """Block until the broker answers and topics exist; retries with backoff. False if ``stop`` was set."""
        delay = 0.5
        while stop is None or not stop.is_set():
            try:
                if self.ping():
                    self.ensure_topics()
                    return True
            except Unavailable as exc:
                log.warning("kafka_unavailable", error=str(exc))
            if on_retry:
                on_retry(delay)
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)
            delay = min(delay * 2, 10.0)
        return False

    # ------------------------------------------------------------- consumer
    def consumer(self, topic: str, group: str, **overrides: Any) -> Any:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        try:
            return KafkaConsumer(
                topic,
                group_id=f"{self.settings.group_prefix}.{group}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self.settings.session_timeout_ms,
                heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
                max_poll_interval_ms=self.settings.max_poll_interval_ms,
                max_poll_records=overrides.pop("max_poll_records", 1),
                **self._common(),
                **overrides,
            )
        except KafkaError as exc:
            raise Unavailable(f"Kafka at {self.settings.bootstrap_servers} is unavailable: {exc}") from exc

    def replay_consumer(self, topic: str, timeout_s: float = 30.0) -> Any:
        """A consumer of every partition of ``topic`` from its beginning, in no consumer group.

        For state rebuilt in memory from a compacted topic on every start (a replica's profile store, its
        adapter set): such a reader must read the whole topic each time and has nothing to commit, so it
        joins no group — a group per boot would pile up on the broker, one per restart.
        """
        from kafka import KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        try:
            consumer = KafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=1,
                **self._common(),
            )
        except KafkaError as exc:
            raise Unavailable(f"Kafka at {self.settings.bootstrap_servers} is unavailable: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.5)
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            consumer.close()
            raise Unavailable(f"topic {topic} has no partitions (yet) on {self.settings.bootstrap_servers}")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        return consumer

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(10)
                self._producer.close(10)
                self._producer = None


class ConsumerLoop(Generic[M]):
    """Consume ``topic`` as ``message_type``; call ``handler(message, record)``; commit after it returns.

    ``prepare(messages)``, when given, sees the records of one poll (up to ``prepare_size``, the consumer's
    ``max_poll_records``; otherwise it polls one at a time) before they are handled one by one, so a handler
    can do work for several records at once (pairgen generates their PrefAlign descriptions in one batch); a
    poll that finds fewer waits up to ``prepare_linger_s`` for the rest, and then, while ``prepare_awaits``
    says more records that belong with these are on their way (pairgen: the rest of a cohort, whose profiles
    several profiler replicas publish seconds apart), up to ``prepare_await_s`` from the first record. It is
    an optimisation only: it commits nothing, and an error in it is logged and the records are handled as if
    it had not run.

    Runs in its own thread (:meth:`start`) until :meth:`stop`. ``processed`` and ``dead_lettered`` count
    outcomes; ``ready`` is set once the consumer joined its group. With ``group=None`` the loop replays the
    whole topic in no group on every (re)connection and commits nothing (see :meth:`Bus.replay_consumer`).
    """

    def __init__(
        self,
        bus: Bus,
        topic: str,
        group: str | None,
        message_type: type[M],
        handler: Callable[[M, Any], object],
        name: str | None = None,
        on_rejected: Callable[[Any, str], None] | None = None,
        prepare: Callable[[list[M]], object] | None = None,
        prepare_size: int = 16,
        prepare_linger_s: float = 1.0,
        prepare_awaits: Callable[[list[M]], bool] | None = None,
        prepare_await_s: float = 0.0,
    ) -> None:
        """``on_rejected(record, reason)`` runs for a record about to be dead-lettered (a consumer that counts
        records per cohort accounts for it there); it must be idempotent, since a retry runs it again."""
        self.bus = bus
        self.topic = topic
        self.group = group
        self.message_type = message_type
        self.handler = handler
        self.on_rejected = on_rejected
        self.prepare = prepare
        self.prepare_size = max(1, prepare_size) if prepare is not None else 1
        self.prepare_linger_s = max(0.0, prepare_linger_s)
        self.prepare_awaits = prepare_awaits
        self.prepare_await_s = max(0.0, prepare_await_s)
        self.name = name or f"consume-{topic}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.processed = 0
        self.dead_lettered = 0
        self.retries = 0
        self.last_error: str | None = None
        self._backoff = Backoff()

    def start(self) -> ConsumerLoop[M]:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.bus.wait_until_ready(self._stop):
                return
            try:
                consumer = (
                    self.bus.replay_consumer(self.topic)
                    if self.group is None
                    # one record per poll, unless prepare wants to see several at once
                    else self.bus.consumer(self.topic, self.group, max_poll_records=self.prepare_size)
                )
            except Unavailable as exc:
                self.last_error = str(exc)
                self._stop.wait(2.0)
                continue
            try:
                self._consume(consumer)
            except Exception as exc:  # connection loss etc.: reconnect, never die
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("consumer_failed", topic=self.topic, error=self.last_error)
                self._stop.wait(2.0)
            finally:
                with contextlib.suppress(Exception):
                    consumer.close(autocommit=False)
                self.ready.clear()

    def _consume(self, consumer: Any) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        lag_checked = 0.0
        while not self._stop.is_set():
            batch = self._poll(consumer)
            if consumer.assignment():
                self.ready.set()
                if time.monotonic() - lag_checked > _LAG_EVERY_S:
                    self._report_lag(consumer)
                    lag_checked = time.monotonic()
            # at most prepare_size records (max_poll_records), over every partition assigned
            self._prepare([record for records in batch.values() for record in records])
            for tp, records in batch.items():
                for record in records:
                    if self._stop.is_set():
                        return
                    if not self._handle(record):
                        # transient failure: rewind to this record and retry after a growing pause
                        consumer.seek(TopicPartition(tp.topic, tp.partition), record.offset)
                        self._stop.wait(self._backoff.next_delay((tp.topic, tp.partition, record.offset)))
                        break
                    self._backoff.clear((tp.topic, tp.partition, record.offset))
                    if self.group is not None:
                        consumer.commit(
                            {TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(record.offset + 1, "")}
                        )

    def _poll(self, consumer: Any) -> dict[Any, list[Any]]:
        """One poll; with ``prepare``, a poll that found fewer than ``prepare_size`` records waits up to
        ``prepare_linger_s`` for more (records published together reach the consumer a few at a time, and
        the first would otherwise be handled alone), then as long as :meth:`_awaiting` says more belong."""
        batch: dict[Any, list[Any]] = {
            tp: list(records) for tp, records in consumer.poll(timeout_ms=500).items()
        }
        if self.prepare is None or not batch:
            return batch
        began = time.monotonic()
        count = sum(map(len, batch.values()))
        while count < self.prepare_size and not self._stop.is_set():
            left_s = began + self.prepare_linger_s - time.monotonic()
            if left_s <= 0:
                left_s = min(1.0, began + self.prepare_await_s - time.monotonic())
                if left_s <= 0 or not self._awaiting(batch):
                    break
            for tp, records in consumer.poll(
                timeout_ms=max(1, int(left_s * 1000)), max_records=self.prepare_size - count
            ).items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch

    def _awaiting(self, batch: dict[Any, list[Any]]) -> bool:
        if self.prepare_awaits is None:
            return False
        messages = self._decodable([record for records in batch.values() for record in records])
        try:
            return bool(messages) and self.prepare_awaits(messages)
        except Exception as exc:  # an optimisation: never let it stop the records being handled
            log.warning("prepare_awaits_failed", topic=self.topic, error=f"{type(exc).__name__}: {exc}")
            return False

    def _decodable(self, records: list[Any]) -> list[M]:
        """The records' messages; one that cannot be decoded is left out (dead-lettered when it is handled)."""
        messages = []
        for record in records:
            try:
                messages.append(decode(record.value, self.message_type, list(record.headers or [])))
            except RecordError:
                continue
        return messages

    def _report_lag(self, consumer: Any) -> None:
        """gravity_consumer_lag per assigned partition, where the broker reports a high watermark."""
        for tp in consumer.assignment():
            try:
                highwater, position = consumer.highwater(tp), consumer.position(tp)
            except Exception:  # metrics are best effort; the consumer loop is not
                continue
            if highwater is not None and position is not None:
                CONSUMER_LAG.labels(self.bus.service, tp.topic, str(tp.partition)).set(
                    max(0, highwater - position)
                )

    def _prepare(self, records: list[Any]) -> None:
        """Hand the decodable ``records`` to ``prepare`` (two or more: one alone gains nothing)."""
        if self.prepare is None or len(records) < 2:
            return
        messages = self._decodable(records)
        if len(messages) < 2:
            return
        try:
            self.prepare(messages)
        except Exception as exc:
            log.warning(
                "prepare_failed",
                topic=self.topic,
                records=len(messages),
                error=f"{type(exc).__name__}: {exc}",
            )

    def _handle(self, record: Any) -> bool:
        """True when the record is done with (processed or durably dead-lettered); False to retry it."""
        headers = [(k, v) for k, v in (record.headers or [])]
        try:
            message = decode(record.value, self.message_type, headers)
        except RecordError as exc:
            return self._dead_letter(record, exc.reason, exc.detail)
        try:
            self.handler(message, record)
        except RecordError as exc:
            return self._dead_letter(record, exc.reason, exc.detail)
        except Exception as exc:
            if is_transient(exc):
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.retries += 1
                RECORDS.labels(self.bus.service, self.topic, "retried").inc()
                log.warning(
                    "handler_transient_retrying",
                    topic=self.topic,
                    offset=record.offset,
                    error=self.last_error,
                )
                return False
            detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
            return self._dead_letter(record, "handler_error", detail)
        self.processed += 1
        RECORDS.labels(self.bus.service, self.topic, "processed").inc()
        return True

    def _dead_letter(self, record: Any, reason: str, detail: str) -> bool:
        """Account for the record (``on_rejected``, idempotent) and publish its dead letter; False (retry, do
        not commit) when either cannot be done now."""
        if self.on_rejected is not None:
            try:
                self.on_rejected(record, reason)
            except Exception as exc:
                if is_transient(exc):
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    return False
                log.error("rejected_hook_failed", topic=self.topic, offset=record.offset, error=str(exc))
        try:
            self.bus.publish_dead_letter(
                dead_letter(
                    self.bus.service,
                    reason,
                    detail,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    payload=record.value,
                )
            )
        except Unavailable as exc:
            self.last_error = str(exc)
            return False
        self.dead_lettered += 1
        RECORDS.labels(self.bus.service, self.topic, "dead_lettered").inc()
        return True


class Backoff:
    """Exponential delays per retried item: 0.5 s, 1 s, 2 s, ... up to ``cap_s``."""

    def __init__(self, first_s: float = 0.5, cap_s: float = 60.0) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self._attempts: dict[Any, int] = {}

    def next_delay(self, key: Any) -> float:
        n = self._attempts.get(key, 0)
        self._attempts[key] = n + 1
        return float(min(self.cap_s, self.first_s * 2**n))

    def clear(self, key: Any) -> None:
        self._attempts.pop(key, None)
