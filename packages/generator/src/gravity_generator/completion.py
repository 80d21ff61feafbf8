"""Running model calls: one request or many, with per-call outcomes.

A :class:`Completer` turns calls into completions and never lets one bad call fail its neighbours: every
call gets its own :class:`~gravity_core.llm.Completion` or exception. :class:`DirectCompleter` serves batch
runs and the openai backend (vLLM batches on its side); :class:`~gravity_generator.batching.ContinuousCompleter`
sends concurrent service requests into the embedded model's running batch.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from gravity_core.grpc.server import DeadlineExceeded
from gravity_core.llm import Completion, GenerationParams, LLMClient, Message

Outcome = Completion | Exception


@dataclass(frozen=True)
class Call:
    messages: tuple[Message, ...]
    params: GenerationParams
    adapter: str | None = None
    # time.monotonic() by which the caller stops waiting; None = no deadline.
    deadline: float | None = None
    # False once the caller went away (a cancelled gRPC call): its work is skipped.
    alive: Callable[[], bool] | None = None

    def expired(self, now: float | None = None) -> Exception | None:
        if self.alive is not None and not self.alive():
            return DeadlineExceeded("the call was cancelled")
        if self.deadline is not None and (now if now is not None else time.monotonic()) >= self.deadline:
            return DeadlineExceeded("the deadline passed before generation started")
        return None


class Completer(Protocol):
    llm: LLMClient

    def complete(self, calls: Sequence[Call]) -> list[Outcome]: ...

    def close(self) -> None: ...


def user_message(text: str) -> tuple[Message, ...]:
    return ({"role": "user", "content": text},)


def run_group(llm: LLMClient, calls: Sequence[Call]) -> list[Outcome]:
    """One chat_batch for calls sharing their params; on failure, each call alone so only the culprit fails."""
    try:
        return list(
            llm.chat_batch([list(c.messages) for c in calls], calls[0].params, [c.adapter for c in calls])
        )
    except Exception as exc:
        if len(calls) == 1:
            return [exc]
    out: list[Outcome] = []
    for call in calls:
        try:
            out.append(llm.chat(list(call.messages), call.params, call.adapter))
        except Exception as exc:
            out.append(exc)
    return out


class DirectCompleter:
    """Calls the backend for the caller, without waiting for other callers.

    Embedded (``concurrency`` 1): calls with equal params go to the model as one chat_batch, run on one
    dedicated model thread like the service's batcher — on a busy CPU, OpenMP generation driven from the
    main thread measured several times slower than from a worker thread. openai: calls run concurrently (up
    to the endpoint's ``concurrency``) so the server can batch them, each with its own outcome.
    """

    def __init__(self, llm: LLMClient, concurrency: int = 1) -> None:
        self.llm = llm
        self.concurrency = max(1, concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="generator-call")

    def complete(self, calls: Sequence[Call]) -> list[Outcome]:
        results: list[Outcome | None] = [None] * len(calls)
        live: list[int] = []
        for i, call in enumerate(calls):
            expired = call.expired()
            if expired is not None:
                results[i] = expired
            else:
                live.append(i)
        if self.concurrency > 1:
            groups = [[i] for i in live]
        else:
            by_params: dict[GenerationParams, list[int]] = defaultdict(list)
            for i in live:
                by_params[calls[i].params].append(i)
            groups = list(by_params.values())
        futures = [(g, self._pool.submit(run_group, self.llm, [calls[i] for i in g])) for g in groups]
        for indices, future in futures:
            for i, outcome in zip(indices, future.result(), strict=True):
                results[i] = outcome
        return [r for r in results if r is not None]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
