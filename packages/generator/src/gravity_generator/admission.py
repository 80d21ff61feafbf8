"""Admission of descriptions over gRPC: at most ``limit`` Personalize calls in the server at once.

gRPC's sync server runs each call on a worker thread and *queues* a call when every thread is taken, whatever
the call. A client flooding Personalize would queue the cheap calls behind it — ListMethods, the other
services' Status polls, and the health checks Kubernetes restarts a pod over. So descriptions take at most
``limit`` threads (the workers minus the control threads kept for the rest); one more is refused at once with
RESOURCE_EXHAUSTED, which the typed client retries with backoff, like HTTP's 429 (generator.http_max_inflight).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gravity_core.errors import RateLimited


class Admission:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._inflight = 0
        self._lock = threading.Lock()

    @property
    def inflight(self) -> int:
        return self._inflight

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._inflight >= self.limit:
                raise RateLimited(
                    f"busy: {self.limit} descriptions are in flight over gRPC (the generator's gRPC threads "
                    "beyond its control threads: generator.grpc_workers); retry shortly"
                )
            self._inflight += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight -= 1
