"""Micro-batching for the embedded backend: concurrent requests share one batched generation.

A CPU (or a single GPU) running one small model is badly used by one sequence at a time: most of each
decoding step is fixed overhead. Request threads enqueue their calls and wait; one worker thread takes the
oldest call, waits ``window_s`` for others to join (or until ``max_batch`` are queued), and runs every
queued call with the same sampling parameters as one ``chat_batch`` with per-row adapters. Calls whose
caller gave up (deadline, cancellation) are dropped before they cost anything.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from gravity_core.errors import Unavailable
from gravity_core.llm import LLMClient
from gravity_core.logging import get_logger
from gravity_generator.completion import Call, Outcome, run_group

log = get_logger(__name__)


@dataclass
class _Pending:
    call: Call
    enqueued: float
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None

    def resolve(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.done.set()


@dataclass
class BatchStats:
    batches: int = 0
    calls: int = 0
    dropped: int = 0
    sizes: Counter[int] = field(default_factory=Counter)

    @property
    def mean_batch(self) -> float:
        return self.calls / self.batches if self.batches else 0.0


class MicroBatcher:
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    def __init__(
        self, llm: LLMClient, window_s: float = 0.015, max_batch: int = 8, name: str = "writer"
    ) -> None:
        self.llm = llm
        self.window_s = window_s
        self.max_batch = max(1, max_batch)
        self.stats = BatchStats()
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    def complete(self, calls: Sequence[Call]) -> list[Outcome]:
        now = time.monotonic()
        pending = [_Pending(call, now) for call in calls]
        with self._cond:
            if self._closed:
                raise Unavailable("the generator is shutting down")
            self._queue.extend(pending)
            self._cond.notify_all()
        for p in pending:
            p.done.wait()
        return [p.outcome for p in pending if p.outcome is not None]

    def close(self, drain_s: float = 30.0) -> None:
        """Refuse new calls, finish the queued ones for up to ``drain_s``, fail the rest with UNAVAILABLE."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(drain_s)
        with self._cond:
            while self._queue:
                self._queue.popleft().resolve(Unavailable("the generator is shutting down"))

    # ------------------------------------------------------------------ worker
    def _take_batch(self) -> list[_Pending]:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return []  # closed and drained
            gather_until = self._queue[0].enqueued + self.window_s
            while len(self._queue) < self.max_batch and not self._closed:
                remaining = gather_until - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            first = self._queue.popleft()
            batch = [first]
            keep: deque[_Pending] = deque()
            while self._queue:
                p = self._queue.popleft()
                if len(batch) < self.max_batch and p.call.params == first.call.params:
                    batch.append(p)
                else:
                    keep.append(p)
            self._queue = keep
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            now = time.monotonic()
            live = []
            for p in batch:
                expired = p.call.expired(now)
                if expired is not None:
                    self.stats.dropped += 1
                    p.resolve(expired)
                else:
                    live.append(p)
            if not live:
                continue
            try:
                outcomes = run_group(self.llm, [p.call for p in live])
            except BaseException as exc:  # never leave a waiting request hanging
                log.exception("batch_failed", size=len(live))
                outcomes = [exc if isinstance(exc, Exception) else RuntimeError(str(exc))] * len(live)
            self.stats.batches += 1
            self.stats.calls += len(live)
            self.stats.sizes[len(live)] += 1
            for p, outcome in zip(live, outcomes, strict=True):
                p.resolve(outcome)
