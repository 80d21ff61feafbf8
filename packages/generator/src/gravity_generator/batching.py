"""Service-mode completer for the embedded backend: every request goes straight into the running batch.

The embedded model batches continuously (gravity_core.llm.embedded.engine): a call made from any thread
joins the sequences already decoding at the next step, and a finished row frees its slot at once. So a
request thread no longer queues for a micro-batch here; it submits its calls (grouped by sampling
parameters, one ``chat_batch`` per group) and waits for its own rows. This completer adds what the service
needs around that: at most ``max_batch`` of its calls in flight (``max_batch = 1`` is the one-at-a-time
baseline of the benchmark), calls whose caller gave up (deadline, cancellation) are dropped before they
cost anything, one bad call fails alone, and ``close`` refuses new calls and waits for the running ones.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from gravity_core.errors import Unavailable
from gravity_core.llm import GenerationParams, LLMClient
from gravity_core.logging import get_logger
from gravity_generator.completion import Call, Outcome, run_group

log = get_logger(__name__)


@dataclass
class BatchStats:
    """Calls this completer ran; ``engine`` (embedded) has the running-batch sizes per decode step."""

    groups: int = 0
    calls: int = 0
    dropped: int = 0
    sizes: Counter[int] = field(default_factory=Counter)


class ContinuousCompleter:
    def __init__(self, llm: LLMClient, max_batch: int = 8, name: str = "writer") -> None:
        self.llm = llm
        self.name = name
        self.max_batch = max(1, max_batch)
        self.stats = BatchStats()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._waiting = 0
        self._closed = False

    def depth(self) -> int:
        """Calls waiting for a slot (the engine's own queue is reported by the model)."""
        return self._waiting

    @property
    def engine(self) -> object | None:
        """The embedded model's continuous-batching engine, when there is one."""
        inner = getattr(self.llm, "inner", self.llm)
        return getattr(inner, "engine", None)

    def complete(self, calls: Sequence[Call]) -> list[Outcome]:
        with self._cond:
            if self._closed:
                raise Unavailable("the generator is shutting down")
        results: list[Outcome | None] = [None] * len(calls)
        by_params: dict[GenerationParams, list[int]] = defaultdict(list)
        for i, call in enumerate(calls):
            by_params[call.params].append(i)
        for indices in by_params.values():
            for start in range(0, len(indices), self.max_batch):
                chunk = indices[start : start + self.max_batch]
                for i, outcome in zip(chunk, self._run([calls[i] for i in chunk]), strict=True):
                    results[i] = outcome
        return [r for r in results if r is not None]

    def _run(self, calls: list[Call]) -> list[Outcome]:
        self._acquire(len(calls))
        try:
            now = time.monotonic()
            outcomes: list[Outcome | None] = [call.expired(now) for call in calls]
            live = [i for i, o in enumerate(outcomes) if o is None]
            self.stats.dropped += len(calls) - len(live)
            if live:
                for i, outcome in zip(live, run_group(self.llm, [calls[i] for i in live]), strict=True):
                    outcomes[i] = outcome
                self.stats.groups += 1
                self.stats.calls += len(live)
                self.stats.sizes[len(live)] += 1
            return [o for o in outcomes if o is not None]
        finally:
            self._release(len(calls))

    def _acquire(self, n: int) -> None:
        """Take ``n`` slots at once (n <= max_batch), so two callers never hold half of what they need."""
        with self._cond:
            self._waiting += n
            try:
                while self._in_flight + n > self.max_batch and not self._closed:
                    self._cond.wait()
                if self._closed:
                    raise Unavailable("the generator is shutting down")
                self._in_flight += n
            finally:
                self._waiting -= n

    def _release(self, n: int) -> None:
        with self._cond:
            self._in_flight -= n
            self._cond.notify_all()

    def close(self, drain_s: float = 30.0) -> None:
        """Refuse new calls (and those still waiting for a slot); wait up to ``drain_s`` for running ones."""
        deadline = time.monotonic() + drain_s
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._in_flight and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
