"""The shared shape of a long-running GRAVITY service, so no package copies server scaffolding.

A service implements :class:`Service` (register servicers, start background work, report readiness,
stop). :func:`run` hosts it until SIGTERM; :func:`start_in_thread` hosts it in-process for tests and
embedding. Health follows :meth:`Service.ready`: NOT_SERVING while, for example, Kafka is unreachable,
SERVING once it is, re-checked every ``poll_s`` seconds. Before a service starts, the artifact store is
repaired (gravity_core.files.repair): a swap a crash interrupted is completed and stale temporary files go.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from gravity_core.artifacts import ArtifactStore
from gravity_core.config import Settings
from gravity_core.grpc.server import ServiceHost
from gravity_core.logging import configure_from_settings, get_logger

log = get_logger(__name__)


class Service(Protocol):
    name: str

    def register(self, host: ServiceHost) -> None:
        """Add servicers to ``host`` (host.add(add_XServicer_to_server, servicer, "gravity.v1.XService"))."""

    def start(self) -> None:
        """Start consumers and workers; called once gRPC is listening. Must not block."""

    def ready(self) -> bool:
        """Whether the service can do its job now (dependencies reachable)."""

    def stop(self) -> None:
        """Stop background work and flush; called before the gRPC server drains."""


@dataclass
class RunningService:
    service: Service
    host: ServiceHost
    port: int
    _stop: threading.Event = field(default_factory=threading.Event)
    _monitor: threading.Thread | None = None

    @property
    def target(self) -> str:
        host = self.host.host if self.host.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"{host}:{self.port}"

    def stop(self, grace_s: float = 2.0) -> None:
        self._stop.set()
        self.host.health.enter_graceful_shutdown()
        try:
            self.service.stop()
        finally:
            self.host.stop(grace_s)
            if self._monitor is not None:
                self._monitor.join(5)


def _monitor_health(running: RunningService, poll_s: float) -> None:
    last: bool | None = None
    while not running._stop.is_set():
        try:
            ok = bool(running.service.ready())
        except Exception as exc:  # a readiness probe must never kill the service
            log.warning("readiness_check_failed", service=running.service.name, error=str(exc))
            ok = False
        if ok != last:
            running.host.set_serving(ok)
            log.info("health", service=running.service.name, serving=ok)
            last = ok
        running._stop.wait(poll_s)


def start_in_thread(
    service: Service, settings: Settings, port: int | None = None, poll_s: float = 1.0
) -> RunningService:
    """Start ``service`` on ``port`` (0 = any free port) and return at once; call ``.stop()`` when done."""
    # A crash may have left a directory swap half done or temporary files behind: repair before serving.
    for action in ArtifactStore.from_settings(settings).repair():
        log.warning("artifact_store_repaired", service=service.name, action=action)
    host = ServiceHost(service.name, settings.grpc, port=port)
    service.register(host)
    # Live only once start() returned: a client that waits for liveness finds every listener (the
    # generator's HTTP port too) accepting.
    bound = host.start(ready=False, live=False)
    running = RunningService(service, host, bound)
    try:
        service.start()
    except BaseException:
        # e.g. a second listener (HTTP) whose port is taken: do not leave the gRPC port serving behind
        host.stop(0)
        raise
    host.mark_live()
    running._monitor = threading.Thread(
        target=_monitor_health, args=(running, poll_s), name=f"health-{service.name}", daemon=True
    )
    running._monitor.start()
    return running


def run(service: Service, settings: Settings, port: int | None = None) -> None:
    """Host ``service`` in the foreground until SIGTERM/SIGINT, then shut down gracefully."""
    configure_from_settings(settings)
    running = start_in_thread(service, settings, port=port)
    log.info("service_running", service=service.name, target=running.target)

    def on_stop() -> None:
        running._stop.set()
        service.stop()

    running.host.wait_for_termination(on_stop=on_stop)
