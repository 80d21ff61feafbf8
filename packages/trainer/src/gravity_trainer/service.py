"""`gravity serve trainer`: trains adapters for complete datasets on gravity.shards.v1 and on gRPC Submit (§3.3).

* Kafka: consumes gravity.shards.v1 (group "trainer"); :meth:`TrainerApp.on_shard` queues a run for a
  complete dataset, and the record is committed once the run is durably queued.
* gRPC TrainerService: Submit queues a run, Status streams its progress until it ends, ListAdapters lists
  the adapters in the artifact store; the servicer routes each to :class:`gravity_trainer.app.TrainerApp`.
* ``[trainer] concurrent_runs`` runs at a time, default one (see worker.py); each publishes its AdapterRef to gravity.adapters.v1 (key = method) or,
  when it fails, is marked FAILED with the reason and dead-lettered. Runs survive restarts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc

from gravity.v1 import pairs_pb2, training_pb2, training_pb2_grpc
from gravity_core.bus import Bus, ConsumerLoop
from gravity_core.config import Settings
from gravity_core.grpc import ServiceHost
from gravity_core.logging import get_logger
from gravity_core.metrics import watch_queue
from gravity_core.service import RunningService, run, start_in_thread
from gravity_trainer.app import TrainerApp
from gravity_trainer.runs import QUEUED
from gravity_trainer.settings import TrainerSettings
from gravity_trainer.worker import RunWorker

log = get_logger(__name__)
GROUP = "trainer"


class TrainerServicer(training_pb2_grpc.TrainerServiceServicer):
    """gRPC's router: protobuf in and out, the work in :class:`TrainerApp` (and the queued runs in the worker)."""

    def __init__(self, app: TrainerApp, worker: RunWorker, stopping: threading.Event) -> None:
        self.app = app
        self.worker = worker
        self.stopping = stopping

    def Submit(
        self, request: training_pb2.SubmitRequest, context: grpc.ServicerContext
    ) -> training_pb2.SubmitResponse:
        response = self.app.submit_request(request)
        self.worker.wake()
        return response

    def Status(
        self, request: training_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> Iterator[training_pb2.StatusResponse]:
        return self.app.status(request.run_id, context.is_active, self.stopping)

    def ListAdapters(
        self, request: training_pb2.ListAdaptersRequest, context: grpc.ServicerContext
    ) -> training_pb2.ListAdaptersResponse:
        return self.app.list_adapters()


class TrainerService:
    name = "trainer"

    def __init__(
        self, settings: Settings, section: TrainerSettings | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.app = TrainerApp(settings, section)
        self.bus = Bus(settings.kafka, "trainer")
        self.worker = RunWorker(
            self.app.runs,
            self.app.store,
            self.bus,
            self.app.section,
            self.app.base_model,
            self.app.work_root,
            env,
        )
        self.loop: ConsumerLoop[pairs_pb2.ShardRef] | None = None
        self._stopping = threading.Event()

    def register(self, host: ServiceHost) -> None:
        host.add(
            training_pb2_grpc.add_TrainerServiceServicer_to_server,
            TrainerServicer(self.app, self.worker, self._stopping),
            "gravity.v1.TrainerService",
        )

    def start(self) -> None:
        watch_queue(
            "trainer", "queued_runs", lambda: sum(1 for r in self.app.runs.all() if r.state == QUEUED)
        )
        recovered = self.app.runs.recover()
        if recovered:
            log.info("runs_recovered", runs=[r.run_id for r in recovered])
        self.worker.start(warm_now=self.app.section.warm_on_start)
        self.loop = ConsumerLoop(
            self.bus, self.settings.kafka.topics.shards, GROUP, pairs_pb2.ShardRef, self._on_shard
        )
        self.loop.start()

    def _on_shard(self, ref: pairs_pb2.ShardRef, record: Any) -> None:
        self.app.on_shard(ref, record)
        self.worker.wake()

    def ready(self) -> bool:
        return self.loop is not None and self.loop.ready.is_set()

    def stop(self) -> None:
        self._stopping.set()
        with self.app.runs.changed:
            self.app.runs.changed.notify_all()
        if self.loop is not None:
            self.loop.stop()
        self.worker.stop()
        self.bus.close()


def start_trainer(
    settings: Settings, port: int | None = 0, env: dict[str, str] | None = None
) -> RunningService:
    """Host the trainer in this process (tests, embedding); ``.stop()`` when done."""
    return start_in_thread(TrainerService(settings, env=env), settings, port=port)


def run_service(settings: Settings, port: int | None = None) -> None:
    """Entry point of `gravity serve trainer`."""
    run(TrainerService(settings), settings, port=port)


__all__ = ["QUEUED", "TrainerService", "run_service", "start_trainer"]
