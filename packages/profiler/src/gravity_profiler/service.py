"""`gravity serve profiler`: gravity.v1.ProfilerService over gRPC, publishing to gravity.profiles.v1 (§3.1).

The servicer routes BuildProfile, GetProfile and IngestRecords to :class:`gravity_profiler.app.ProfilerApp`,
which holds the logic. :class:`ProfilerService` is the wiring: a background worker builds the queued users
(work left in the queue by a crash is resumed at start; several replicas may share the queue) and a probe
keeps Kafka's reachability fresh.

Profiles are keyed by user_id on a compacted topic and stored one file per user, so a rebuild replaces.
Health is NOT_SERVING while Kafka is unreachable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc

from gravity.v1 import profile_pb2, profile_pb2_grpc
from gravity_core.bus import Bus
from gravity_core.catalog import Catalog
from gravity_core.config import Settings
from gravity_core.errors import is_transient
from gravity_core.grpc import ServiceHost, check_deadline
from gravity_core.logging import get_logger
from gravity_core.metrics import watch_queue
from gravity_core.service import run
from gravity_profiler.app import SERVICE, ProfilerApp
from gravity_profiler.builder import ProfileBuilder

log = get_logger(__name__)
_PROBE_INTERVAL_S = 2.0
_PROBE_TIMEOUT_S = 5.0


class ProfilerServicer(profile_pb2_grpc.ProfilerServiceServicer):
    """gRPC's router: protobuf in and out, the work in :class:`ProfilerApp`."""

    def __init__(self, app: ProfilerApp, wake: threading.Event) -> None:
        self.app = app
        self.wake = wake

    def BuildProfile(
        self, request: profile_pb2.BuildProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.BuildProfileResponse:
        return self.app.build_profile(request, lambda: check_deadline(context))

    def GetProfile(
        self, request: profile_pb2.GetProfileRequest, context: grpc.ServicerContext
    ) -> profile_pb2.GetProfileResponse:
        return self.app.get_profile(request)

    def IngestRecords(
        self, request_iterator: Iterator[profile_pb2.IngestRecordsRequest], context: grpc.ServicerContext
    ) -> profile_pb2.IngestRecordsResponse:
        response = self.app.ingest_records(request_iterator)
        self.wake.set()
        return response


class ProfilerService:
    name = SERVICE

    def __init__(self, settings: Settings, builder: ProfileBuilder | None = None) -> None:
        self.settings = settings
        self.bus = Bus(settings.kafka, SERVICE)
        self.app = ProfilerApp(settings, self.bus, self.ready, builder)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._probe: threading.Thread | None = None
        # Kafka reachability, refreshed by a background probe: a ping against a dead broker blocks for
        # its bootstrap timeout, which neither health checks nor RPCs should wait for.
        self._kafka_ok = threading.Event()

    @property
    def catalog(self) -> Catalog:
        return self.app.catalog

    @property
    def published(self) -> int:
        return self.app.published

    @property
    def failed(self) -> int:
        return self.app.failed

    # ------------------------------------------------------------ lifecycle
    def register(self, host: ServiceHost) -> None:
        host.add(
            profile_pb2_grpc.add_ProfilerServiceServicer_to_server,
            ProfilerServicer(self.app, self._wake),
            "gravity.v1.ProfilerService",
        )

    def start(self) -> None:
        self.app.open_claims()
        watch_queue(SERVICE, "pending", lambda: len(self.app.store.pending()))
        self._probe = threading.Thread(target=self._watch_kafka, name="profiler-kafka-probe", daemon=True)
        self._probe.start()
        self._worker = threading.Thread(target=self._work, name="profiler-worker", daemon=True)
        self._worker.start()

    def ready(self) -> bool:
        # A worker that died would leave accepted work unbuilt: then the service is not serving.
        worker_alive = self._worker is None or self._worker.is_alive() or self._stop.is_set()
        return self._kafka_ok.is_set() and worker_alive

    def _watch_kafka(self) -> None:
        while not self._stop.is_set():
            if self.bus.ping(timeout_s=_PROBE_TIMEOUT_S):
                self._kafka_ok.set()
            else:
                self._kafka_ok.clear()
            self._stop.wait(_PROBE_INTERVAL_S)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            # A build in progress is not interrupted; its queue entry stays and is resumed at next start.
            self._worker.join(5.0)
        if self._probe is not None:
            self._probe.join(1.0)
        self.bus.close()
        self.app.close()

    def _work(self) -> None:
        if not self.bus.wait_until_ready(self._stop):
            return
        self.app.release_orphans()
        while not self._stop.is_set():
            items = self.app.claim()
            if not items:
                self._wake.wait(self.app.config.worker_poll_s)
                self._wake.clear()
                continue
            try:
                self.app.process(items)
            except Exception as exc:
                if is_transient(exc):
                    # Kafka or the LLM endpoint is down: the claims stay; try again shortly.
                    log.warning("profiler_worker_waiting", error=str(exc), pending=len(items))
                    self._stop.wait(5.0)
                    continue
                log.exception("profiler_worker_error", error=f"{type(exc).__name__}: {exc}", items=len(items))
                self.app.process_one_by_one(items)


def run_service(settings: Settings, port: int | None = None) -> None:
    """Entry point of `gravity serve profiler`."""
    run(ProfilerService(settings), settings, port)
