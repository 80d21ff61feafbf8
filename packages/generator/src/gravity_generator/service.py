"""`gravity serve generator`: gRPC GeneratorService, following gravity.profiles.v1 and gravity.adapters.v1.

Start-up never blocks the gRPC port: the model, catalog and adapters load in the background while health
says NOT_SERVING (requests meanwhile get UNAVAILABLE). Each replica replays both compacted topics whole on
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
from gravity_generator.app import GeneratorApp, check_paths, load_config
from gravity_generator.requests import deadline_from, job_from_request, to_response
from gravity_generator.settings import GeneratorSettings
from gravity_generator.telemetry import observed, observed_stream

log = get_logger(__name__)


class GeneratorServicer(generation_pb2_grpc.GeneratorServiceServicer):
    def __init__(self, app: GeneratorApp) -> None:
        self.app = app

    def Personalize(
        self, request: generation_pb2.PersonalizeRequest, context: grpc.ServicerContext
    ) -> generation_pb2.PersonalizeResponse:
        check_deadline(context)
        job = job_from_request(request, self.app, deadline_from(context.time_remaining()), context.is_active)
        engine = self.app.require_engine()
        result = observed(job.method, lambda: engine.run_one(job), lambda r: r.completion_tokens)
        return to_response(result, job)

    def PersonalizeStream(
        self, request: generation_pb2.PersonalizeStreamRequest, context: grpc.ServicerContext
    ) -> Iterator[generation_pb2.PersonalizeStreamResponse]:
        check_deadline(context)
        if not request.HasField("request"):
            raise InvalidInput("request", "is required")
        job = job_from_request(
            request.request, self.app, deadline_from(context.time_remaining()), context.is_active
        )
        events = self.app.require_engine().stream(job)
        for event in observed_stream(
            job.method, events, lambda e: None if isinstance(e, str) else e.completion_tokens
        ):
            if isinstance(event, str):
                yield generation_pb2.PersonalizeStreamResponse(delta=event)
            else:
                yield generation_pb2.PersonalizeStreamResponse(final=to_response(event, job))

    def ListMethods(
        self, request: generation_pb2.ListMethodsRequest, context: grpc.ServicerContext
    ) -> generation_pb2.ListMethodsResponse:
        engine = self.app.require_engine()
        return generation_pb2.ListMethodsResponse(
            methods=[
                generation_pb2.MethodInfo(
                    **names.method_fields(s.name),
                    description=s.description,
                    requires_adapter=s.requires_adapter,
                    available=s.available,
                    adapter=s.adapter,
                )
                for s in engine.methods()
            ]
        )


class GeneratorService:
    name = "generator"

    def __init__(self, settings: Settings, cfg: GeneratorSettings | None = None) -> None:
        self.settings = settings
        self.cfg = cfg or load_config(settings)
        self.bus = Bus(settings.kafka, self.name) if self.cfg.follow_topics else None
        skips = SkipLog(on_skip=self.bus.skip_to_dlq if self.bus is not None else None)
        self.app = GeneratorApp(settings, self.cfg, micro_batch=True, skips=skips)
        self.loops: list[ConsumerLoop[Any]] = []
        self.load_error: str | None = None
        self._stopping = threading.Event()
        self._loader: threading.Thread | None = None

    def register(self, host: ServiceHost) -> None:
        host.add(
            generation_pb2_grpc.add_GeneratorServiceServicer_to_server,
            GeneratorServicer(self.app),
            "gravity.v1.GeneratorService",
        )

    def start(self) -> None:
        self._loader = threading.Thread(target=self._load, name="generator-load", daemon=True)
        self._loader.start()

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

    def stop(self) -> None:
        self._stopping.set()
        for loop in self.loops:
            loop.stop()
        if self._loader is not None:
            self._loader.join(5)
        self.app.close()
        if self.bus is not None:
            self.bus.close()


def host_settings(settings: Settings, cfg: GeneratorSettings) -> Settings:
    """Settings with enough gRPC worker threads: calls mostly wait on the batcher, not on a CPU."""
    if settings.grpc.max_workers >= cfg.grpc_workers:
        return settings
    grpc_settings = settings.grpc.model_copy(update={"max_workers": cfg.grpc_workers})
    return settings.model_copy(update={"grpc": grpc_settings})


def start_generator(
    settings: Settings, port: int | None = 0, cfg: GeneratorSettings | None = None
) -> RunningService:
    """Host the generator in this process (tests, benchmarks, embedding); ``.stop()`` when done."""
    cfg = cfg or load_config(settings)
    return start_in_thread(GeneratorService(settings, cfg), host_settings(settings, cfg), port=port)


def run_service(settings: Settings, port: int | None = None) -> None:
    """Entry point of `gravity serve generator`."""
    cfg = load_config(settings)
    check_paths(cfg)
    run(GeneratorService(settings, cfg), host_settings(settings, cfg), port=port)
