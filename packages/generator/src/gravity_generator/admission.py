"""Admission of descriptions: at most ``limit`` in the server at once, one more refused with RateLimited.

Both surfaces use it: HTTP's chat completions (generator.http_max_inflight, answered 429) and gRPC's
Personalize calls, where the limit also protects the server's threads. gRPC's sync server runs each call on a worker thread and *queues* a call when every thread is taken, whatever
the call. A client flooding Personalize would queue the cheap calls behind it — ListMethods, the other
services' Status polls, and the health checks Kubernetes restarts a pod over. So descriptions take at most
``limit`` threads (the workers minus the control threads kept for the rest); one more is refused at once with
RESOURCE_EXHAUSTED and its ``retry-after-ms`` trailer, which the typed client waits out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gravity_core.errors import RateLimited


class Admission:
    def __init__(self, limit: int, what: str) -> None:
        """``what`` completes the refusal: "busy: <limit> <what>; retry shortly"."""
        self.limit = limit
        self.what = what
        self._inflight = 0
        self._lock = threading.Lock()

    @property
    def inflight(self) -> int:
        return self._inflight

    def admit(self) -> None:
        """Take a place, or raise RateLimited; whoever holds it calls :meth:`release` once."""
        with self._lock:
            if self._inflight >= self.limit:
                raise RateLimited(f"busy: {self.limit} {self.what}; retry shortly")
            self._inflight += 1

    def release(self) -> None:
        with self._lock:
            self._inflight -= 1

    @contextmanager
    def slot(self) -> Iterator[None]:
        self.admit()
        try:
            yield
        finally:
            self.release()
