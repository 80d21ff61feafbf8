"""`gravity serve generator`: gRPC GeneratorService, following gravity.profiles.v1 and gravity.adapters.v1,
and HTTP next to it on the same GeneratorApp (gravity_generator.web: the OpenAI-compatible API and the
compare page, on ``generator.http_port``).

Start-up never blocks the ports: the model, catalog and adapters load in the background while health
says NOT_SERVING (requests meanwhile get UNAVAILABLE, HTTP 503). Each replica replays both compacted topics whole on
every start, in no consumer group: its profile store and adapter set are in-memory state rebuilt from them,
so there is nothing to commit, and a restart leaves no group behind on the broker.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc

from gravity.v1 import generation_pb2, generation_pb2_grpc, training_pb2
from gravity_core import names
from gravity_core.bus import Bus, ConsumerLoop
from gravity_core.config import Settings
from gravity_core.errors import InvalidInput
from gravity_core.grpc import ServiceHost, check_deadline
from gravity_core.logging import get_logger
from gravity_core.service import RunningService, run, start_in_thread
from gravity_core.skips import SkipLog
from gravity_core.web.server import HttpServer
from gravity_generator.admission import Admission
from gravity_generator.app import GeneratorApp, check_paths, load_config
from gravity_generator.requests import deadline_from, to_response
from gravity_generator.serving import PersonalizeServing
from gravity_generator.settings import GeneratorSettings
from gravity_generator.web.app import GeneratorWeb, create_web_app

log = get_logger(__name__)


class GeneratorServicer(generation_pb2_grpc.GeneratorServiceServicer):
    """gRPC's router: protobuf in and out, the work in :class:`PersonalizeServing` (shared with HTTP)."""

    def __init__(self, serving: PersonalizeServing, admission: Admission) -> None:
        self.serving = serving
        self.admission = admission

    def Personalize(
        self, request: generation_pb2.PersonalizeRequest, context: grpc.ServicerContext
    ) -> generation_pb2.PersonalizeResponse:
        check_deadline(context)
        with self.admission.slot():
            job = self.serving.job(request, deadline_from(context.time_remaining()), context.is_active)
            return to_response(self.serving.personalize(job), job)

    def PersonalizeStream(
        self, request: generation_pb2.PersonalizeStreamRequest, context: grpc.ServicerContext
    ) -> Iterator[generation_pb2.PersonalizeStreamResponse]:
        check_deadline(context)
        if not request.HasField("request"):
            raise InvalidInput("request", "is required")
        with self.admission.slot():
            job = self.serving.job(
                request.request, deadline_from(context.time_remaining()), context.is_active
            )
            for event in self.serving.stream(job):
                if isinstance(event, str):
                    yield generation_pb2.PersonalizeStreamResponse(delta=event)
                else:
                    yield generation_pb2.PersonalizeStreamResponse(final=to_response(event, job))

    def ListMethods(
        self, request: generation_pb2.ListMethodsRequest, context: grpc.ServicerContext
    ) -> generation_pb2.ListMethodsResponse:
        return generation_pb2.ListMethodsResponse(
            methods=[
                generation_pb2.MethodInfo(
                    **names.method_fields(s.name),
                    description=s.description,
                    requires_adapter=s.requires_adapter,
                    available=s.available,
                    adapter=s.adapter,
                )
                for s in self.serving.methods()
            ]
        )


class GeneratorService:
    name = "generator"

    def __init__(
        self, settings: Settings, cfg: GeneratorSettings | None = None, http_port: int | None = None
    ) -> None:
        """``http_port`` overrides ``generator.http_port`` (0 = any free port)."""
        self.settings = settings
        self.cfg = cfg or load_config(settings)
        self.http_port = self.cfg.http_port if http_port is None else http_port
        self.web: GeneratorWeb | None = None
        self.http: HttpServer | None = None
        self.bus = Bus(settings.kafka, self.name) if self.cfg.follow_topics else None
        skips = SkipLog(on_skip=self.bus.skip_to_dlq if self.bus is not None else None)
        self.app = GeneratorApp(settings, self.cfg, micro_batch=True, skips=skips)
        self.serving = PersonalizeServing(self.app)
        self.admission = Admission(
            inflight_limit(settings, self.cfg),
            "descriptions are in flight over gRPC (the generator's gRPC threads beyond its control "
            "threads: generator.grpc_workers)",
        )
        self.loops: list[ConsumerLoop[Any]] = []
        self.load_error: str | None = None
        self._stopping = threading.Event()
        self._loader: threading.Thread | None = None

    def register(self, host: ServiceHost) -> None:
        host.add(
            generation_pb2_grpc.add_GeneratorServiceServicer_to_server,
            GeneratorServicer(self.serving, self.admission),
            "gravity.v1.GeneratorService",
        )

    def start(self) -> None:
        if self.cfg.http_enabled:
            self._start_http()
        self._loader = threading.Thread(target=self._load, name="generator-load", daemon=True)
        self._loader.start()

    def _start_http(self) -> None:
        """Bind at once, so a port that is taken fails the start with the address in the message."""
        grpc_cfg = self.settings.grpc
        self.web = create_web_app(
            self.serving, self.settings, ready=self.ready, not_ready_reason=self.not_ready_reason
        )
        self.http = HttpServer(
            self.web.asgi,
            self.name,
            self.cfg.http_host or grpc_cfg.host,
            self.http_port,
            tls_cert=grpc_cfg.tls_cert,
            tls_key=grpc_cfg.tls_key,
            tls_ca=grpc_cfg.tls_ca,
            grace_s=grpc_cfg.grace_s,
        )
        self.http.start()

    def _load(self) -> None:
        try:
            self.app.load()
        except Exception as exc:  # stay up and NOT_SERVING; the reason is in the log and in load_error
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("generator_load_failed", error=self.load_error)
            return
        if self.bus is None or self._stopping.is_set():
            return
        self.loops.append(self.app.profiles.follow(self.bus))
        self.loops.append(
            ConsumerLoop(
                self.bus,
                self.bus.topics.adapters,
                None,
                training_pb2.AdapterRef,
                self._on_adapter,
                name="generator-adapters",
            ).start()
        )

    def _on_adapter(self, ref: training_pb2.AdapterRef, _record: Any) -> None:
        assert self.app.registry is not None
        self.app.registry.install(ref)

    def ready(self) -> bool:
        if not self.app.loaded.is_set():
            return False
        if self.bus is None:
            return True
        return len(self.loops) == 2 and all(loop.ready.is_set() for loop in self.loops)

    def not_ready_reason(self) -> str:
        if self.load_error is not None:
            return f"loading failed: {self.load_error}"
        if not self.app.loaded.is_set():
            return "the model, catalog and adapters are loading"
        if self.bus is not None and not self.ready():
            return "the profile and adapter topics are not joined yet (Kafka unreachable?)"
        return ""

    def stop(self) -> None:
        self._stopping.set()
        if self.http is not None:
            # first, while the engine still runs: HTTP requests in flight get grpc.grace_s to finish
            self.http.stop()
        if self.web is not None:
            self.web.close()
        for loop in self.loops:
            loop.stop()
        if self._loader is not None:
            self._loader.join(5)
        self.app.close()
        if self.bus is not None:
            self.bus.close()


# gRPC threads kept beyond a full batch for the cheap calls (ListMethods, health, Status of the others).
CONTROL_THREADS = 8


def inflight_limit(settings: Settings, cfg: GeneratorSettings) -> int:
    """Personalize calls admitted at once over gRPC: every worker thread but the control threads."""
    return host_settings(settings, cfg).grpc.max_workers - CONTROL_THREADS


def host_settings(settings: Settings, cfg: GeneratorSettings) -> Settings:
    """Settings with enough gRPC worker threads: calls mostly wait on the batcher, not on a CPU. gRPC's sync
    server queues a call while every thread is busy, so a client that fills the batch (``max_batch``
    Personalize calls) must still leave threads: with exactly ``max_batch`` of them, the demo's ListMethods
    waited behind 32 descriptions until its deadline."""
    workers = max(cfg.grpc_workers, cfg.max_batch + CONTROL_THREADS)
    if settings.grpc.max_workers >= workers:
        return settings
    grpc_settings = settings.grpc.model_copy(update={"max_workers": workers})
    return settings.model_copy(update={"grpc": grpc_settings})


def start_generator(
    settings: Settings,
    port: int | None = 0,
    cfg: GeneratorSettings | None = None,
    http_port: int | None = 0,
) -> RunningService:
    """Host the generator in this process (tests, benchmarks, embedding); ``.stop()`` when done.

    ``port``/``http_port``: 0 = any free port (the default here), None = the configured one. The HTTP side
    is ``running.service.http`` (``.url``), None when ``generator.http_enabled`` is false."""
    cfg = cfg or load_config(settings)
    service = GeneratorService(settings, cfg, http_port=http_port)
    return start_in_thread(service, host_settings(settings, cfg), port=port)


def run_service(settings: Settings, port: int | None = None) -> None:
    """Entry point of `gravity serve generator`."""
    cfg = load_config(settings)
    check_paths(cfg)
    run(GeneratorService(settings, cfg), host_settings(settings, cfg), port=port)
