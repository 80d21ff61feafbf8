"""`gravity serve pairgen`: profiles from Kafka (and gRPC) -> shards in the artifact store -> ShardRefs (§3.2).

The logic is :class:`gravity_pairgen.app.PairGenApp`. :class:`PairGenService` is the wiring: it loads the
app's resources in the background (health NOT_SERVING meanwhile), then consumes ``topics.profiles`` (group
``consumer_group``). The consumer commits a profile only after its shards, the cohort's manifest and card are
written and its ShardRefs published to ``topics.shards``; the same user always maps to the same shard file,
so a crash and replay rewrites identical shards: every pair exists exactly once. A profile record the
consumer gives up on still counts in its cohort, as rejected.

gRPC: BuildPairs (one profile, answered with its ShardRefs) and GetManifest.
"""

from __future__ import annotations

import threading

import grpc

from gravity.v1 import pairs_pb2, pairs_pb2_grpc, profile_pb2
from gravity_core.bus import Bus, ConsumerLoop
from gravity_core.catalog import Catalog
from gravity_core.config import Settings
from gravity_core.embeddings import Embedder
from gravity_core.grpc import ServiceHost, check_deadline
from gravity_core.llm import LLMClient
from gravity_core.service import run
from gravity_pairgen.app import SERVICE, PairGenApp
from gravity_pairgen.settings import PairGenSettings


class PairGenServicer(pairs_pb2_grpc.PairGenServiceServicer):
    """gRPC's router: protobuf in and out, the work in :class:`PairGenApp`."""

    def __init__(self, app: PairGenApp) -> None:
        self.app = app

    def BuildPairs(
        self, request: pairs_pb2.BuildPairsRequest, context: grpc.ServicerContext
    ) -> pairs_pb2.BuildPairsResponse:
        return self.app.build_pairs(request, lambda: check_deadline(context))

    def GetManifest(
        self, request: pairs_pb2.GetManifestRequest, context: grpc.ServicerContext
    ) -> pairs_pb2.GetManifestResponse:
        return self.app.get_manifest(request)


class PairGenService:
    name = SERVICE

    def __init__(
        self,
        settings: Settings,
        cfg: PairGenSettings | None = None,
        *,
        catalog: Catalog | None = None,
        embedder: Embedder | None = None,
        llm: LLMClient | None = None,
    ) -> None:
        self.settings = settings
        self.bus = Bus(settings.kafka, self.name)
        self.app = PairGenApp(settings, self.bus, cfg, catalog=catalog, embedder=embedder, llm=llm)
        self._stop = threading.Event()
        self.loop: ConsumerLoop[profile_pb2.UserProfile] | None = None

    def register(self, host: ServiceHost) -> None:
        host.add(
            pairs_pb2_grpc.add_PairGenServiceServicer_to_server,
            PairGenServicer(self.app),
            "gravity.v1.PairGenService",
        )

    def start(self) -> None:
        threading.Thread(target=self._load_then_consume, name="pairgen-load", daemon=True).start()

    def ready(self) -> bool:
        return self.app.loaded.is_set() and self.loop is not None and self.loop.ready.is_set()

    def stop(self) -> None:
        self._stop.set()
        if self.loop is not None:
            self.loop.stop()
        self.bus.close()

    def wait_loaded(self, timeout_s: float) -> bool:
        return self.app.loaded.wait(timeout_s)

    def _load_then_consume(self) -> None:
        self.app.load(self._stop)
        if not self.app.loaded.is_set() or self._stop.is_set():
            return
        self.loop = ConsumerLoop(
            self.bus,
            self.bus.topics.profiles,
            self.app.cfg.consumer_group,
            profile_pb2.UserProfile,
            self.app.handle,
            on_rejected=self.app.account_rejected,
            prepare=self.app.prepare,
            prepare_size=self.app.cfg.llm_batch_users,
            prepare_awaits=self.app.awaits_cohort,
            prepare_await_s=self.app.cfg.cohort_wait_s,
        ).start()


def run_service(settings: Settings, port: int | None = None) -> None:
    run(PairGenService(settings), settings, port)
