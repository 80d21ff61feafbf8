"""gravity.v1.JudgeService: Rank, Compare, Rate and a streaming Evaluate (paper §4.1, App. D.3), hosted by
gravity_core.service.

The servicer routes each call to :class:`gravity_judge.app.JudgeApp`, which holds the logic. Personas come
from the request, else from this replica's ProfileStore, which can load ``judge.profiles_file`` at start
and/or replay gravity.profiles.v1 in no consumer group (every replica must see every profile). The judge
model loads in the background; health is SERVING once it is loaded (and, when following profiles, once the
replay consumer is assigned its partitions).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc

from gravity.v1 import judge_pb2, judge_pb2_grpc
from gravity_core.bus import Bus
from gravity_core.config import Settings
from gravity_core.grpc.server import ServiceHost
from gravity_core.llm import LLMClient
from gravity_core.profiles import ProfileStore
from gravity_core.tracking import check_backends
from gravity_judge.app import JudgeApp
from gravity_judge.settings import JudgeSettings

SERVICE_NAME = "gravity.v1.JudgeService"


class JudgeServicer(judge_pb2_grpc.JudgeServiceServicer):
    """gRPC's router: protobuf in and out, the work in :class:`JudgeApp`."""

    def __init__(self, app: JudgeApp) -> None:
        self.app = app

    def Rank(self, request: judge_pb2.RankRequest, context: grpc.ServicerContext) -> judge_pb2.RankResponse:
        return self.app.rank(request, context)

    def Compare(
        self, request: judge_pb2.CompareRequest, context: grpc.ServicerContext
    ) -> judge_pb2.CompareResponse:
        return self.app.compare(request, context)

    def Rate(self, request: judge_pb2.RateRequest, context: grpc.ServicerContext) -> judge_pb2.RateResponse:
        return self.app.rate(request, context)

    def Evaluate(
        self, request: judge_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> Iterator[judge_pb2.EvaluateResponse]:
        return self.app.evaluate_stream(request, context)


class JudgeService:
    name = "judge"

    def __init__(self, settings: Settings, llm: LLMClient | None = None) -> None:
        self.settings = settings
        self.app = JudgeApp(settings, llm)
        self._follower: Any = None

    @property
    def cfg(self) -> JudgeSettings:
        return self.app.cfg

    @property
    def store(self) -> ProfileStore:
        return self.app.store

    def register(self, host: ServiceHost) -> None:
        host.add(judge_pb2_grpc.add_JudgeServiceServicer_to_server, JudgeServicer(self.app), SERVICE_NAME)

    def start(self) -> None:
        check_backends(self.settings.tracking.report_to)  # an unusable tracker is a configuration error
        self.app.load_profiles_file()
        if self.app.cfg.follow_profiles:
            self.app.bus = Bus(self.settings.kafka, "judge")
            self._follower = self.app.store.follow(self.app.bus)
        if not self.app.llm_loaded.is_set():
            threading.Thread(target=self.app.load_llm, name="judge-model", daemon=True).start()

    def ready(self) -> bool:
        if not self.app.model_ready():
            return False
        return self._follower is None or self._follower.ready.is_set()

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()
        if self.app.bus is not None:
            self.app.bus.close()


def run_service(settings: Settings, port: int | None = None) -> None:
    from gravity_core.service import run

    run(JudgeService(settings), settings, port)
