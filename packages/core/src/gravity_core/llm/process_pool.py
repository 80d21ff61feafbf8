"""One embedded model served by several worker processes, for work whose calls are independent (the LLM
judge of paper §4.1 scores each (reader, book) unit on its own).

A process with two intra-op threads kept two CPU cores only ~70% busy on the judge's scoring (Python between
the kernels runs on one thread, and small operations do not split across threads); two Python threads in one
process did not help either (measured 0.99-1.08x). Two processes of one thread each do keep both cores busy:
the demo's judge took 223 and 228 s that way against 345 and 341 s in one process (alternated runs, the same
8 units). An endpoint with ``processes = N`` (embedded backend) therefore loads its model in N spawned worker
processes with ``threads / N`` intra-op threads each; a call from any thread runs on a worker that is free, so
N threads calling at once (the judge's units, ``concurrency_for``) compute in parallel.

Calls and their results cross the process boundary pickled (requests and results are plain dataclasses, typed
errors pickle as built). An adapter load or unload goes to every worker. A worker that dies fails the call it
was running with ``WorkerDied`` (an ``Unavailable``: retry) and is started again, with the adapters loaded so
far, before it takes another call.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from gravity_core.config import LLMEndpoint
from gravity_core.errors import Unavailable, Unsupported
from gravity_core.llm.types import (
    ChoiceRequest,
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    ModelInfo,
    StreamEvent,
    Usage,
)
from gravity_core.logging import get_logger

if TYPE_CHECKING:
    from gravity_core.llm.embedded.prompting import Prompter

log = get_logger(__name__)


def worker_threads(endpoint: LLMEndpoint) -> int:
    """Each worker's share of the cores: the endpoint's threads (else OMP_NUM_THREADS, else every core)
    divided among its processes, at least one."""
    total = endpoint.threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count() or 1
    return max(1, total // endpoint.processes)


class WorkerDied(Unavailable):
    """The worker process running a call exited; it is being started again, so a retry may succeed."""


@dataclass(frozen=True)
class _Call:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _serve(conn: Connection, endpoint: LLMEndpoint) -> None:
    """A worker's life: load the model, then answer calls until the parent's end of the pipe closes (its
    exit, even a killed one, closes it; a call being computed then ends at the reply). No PR_SET_PDEATHSIG:
    it follows the thread that started the worker, which may be a short-lived loading thread."""
    os.environ["OMP_NUM_THREADS"] = str(endpoint.threads)
    from gravity_core.llm.embedded import EmbeddedLLM

    try:
        llm = EmbeddedLLM(endpoint)
    except Exception as exc:  # the parent raises it from its first call
        conn.send(("error", _portable(exc), Usage()))
        return
    conn.send(("ok", llm.info, Usage()))
    while True:
        try:
            call: _Call = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        before = Usage(**vars(llm.usage))
        try:
            result = getattr(llm, call.method)(*call.args, **call.kwargs)
            reply: tuple[str, Any, Usage] = ("ok", result, _usage_since(before, llm.usage))
        except Exception as exc:
            reply = ("error", _portable(exc), _usage_since(before, llm.usage))
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _usage_since(before: Usage, now: Usage) -> Usage:
    return Usage(
        now.prompt_tokens - before.prompt_tokens,
        now.completion_tokens - before.completion_tokens,
        now.calls - before.calls,
        now.cached_calls - before.cached_calls,
    )


def _portable(exc: Exception) -> Exception:
    """The exception itself when it survives pickling (our typed errors do), else its text."""
    try:
        return pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class _Worker:
    """One spawned process holding the model, and the pipe to it."""

    def __init__(self, endpoint: LLMEndpoint, index: int) -> None:
        self.endpoint = endpoint
        self.index = index
        self.info: ModelInfo | None = None
        self._start()

    def _start(self) -> None:
        """Spawn the process; :meth:`ready` waits for its model (so several workers load at once)."""
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, self.endpoint), name=f"llm-worker-{self.index}", daemon=True
        )
        self.process.start()
        child.close()

    def ready(self) -> ModelInfo:
        if self.info is None:
            self.info = self._receive()[0]
        return self.info

    def call(self, call: _Call) -> tuple[Any, Usage]:
        try:
            self.conn.send(call)
        except (BrokenPipeError, OSError) as exc:
            raise self._died() from exc
        return self._receive()

    def _receive(self) -> tuple[Any, Usage]:
        try:
            status, value, usage = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        if status == "error":
            raise value
        return value, usage

    def _died(self) -> WorkerDied:
        self.process.join(timeout=5)
        return WorkerDied(f"LLM worker process {self.index} exited (code {self.process.exitcode})")

    def alive(self) -> bool:
        return self.process.is_alive()

    def restart(self, holds: Sequence[tuple[str, str]]) -> None:
        self.stop()
        self.info = None
        self._start()
        self.ready()
        for name, path in holds:
            self.call(_Call("load_adapter", (name, path), {}))

    def stop(self) -> None:
        self.conn.close()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class ProcessPoolLLM(LLMClient):
    """The embedded backend in ``endpoint.processes`` worker processes (see the module docstring)."""

    def __init__(self, endpoint: LLMEndpoint) -> None:
        if endpoint.processes < 2:
            raise ValueError("a process pool needs processes >= 2; use EmbeddedLLM for one")
        self.endpoint = endpoint
        each = endpoint.model_copy(update={"processes": 1, "threads": worker_threads(endpoint)})
        self.usage = Usage()
        self._usage_lock = threading.Lock()
        # Every adapter load still held, in order: a restarted worker replays them (EmbeddedLLM counts holds).
        self._holds: list[tuple[str, str]] = []
        # Workers that died and could not be started again; with all of them gone a call fails, never waits.
        self._lost: set[int] = set()
        self._closed = False
        self._workers = [_Worker(each, i) for i in range(endpoint.processes)]
        try:
            self._context_window = min(w.ready().context_window for w in self._workers)
        except Exception:
            self.close()
            raise
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for worker in self._workers:
            self._idle.put(worker)
        self._prompter: Prompter | None = None
        log.info(
            "llm_process_pool_started",
            model=endpoint.model,
            processes=len(self._workers),
            threads=each.threads,
        )

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            self.endpoint.model, "embedded", self._context_window, sorted({n for n, _ in self._holds})
        )

    def _take(self) -> _Worker | None:
        """A free worker, or None after a second without one (the caller checks again)."""
        try:
            return self._idle.get(timeout=1.0)
        except queue.Empty:
            if self._closed:
                raise Unavailable("the LLM worker pool is closed") from None
            if len(self._lost) == len(self._workers):
                raise Unavailable(
                    "every LLM worker process died and could not be started again (llm_worker_restart_failed "
                    "in the log says why)"
                ) from None
            return None

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        while (worker := self._take()) is None:
            pass
        try:
            result, usage = worker.call(_Call(method, args, kwargs))
        except WorkerDied:
            self._replace(worker)
            raise
        except BaseException:  # the call failed in a worker that is still fine
            self._idle.put(worker)
            raise
        self._idle.put(worker)
        with self._usage_lock:
            for key, value in vars(usage).items():
                setattr(self.usage, key, getattr(self.usage, key) + value)
        return result

    def _replace(self, worker: _Worker) -> None:
        """Start a dead worker again (off the caller's thread) and return it to the pool once it is up."""

        def restart() -> None:
            if self._closed:
                return
            try:
                worker.restart(list(self._holds))
                log.warning("llm_worker_restarted", worker=worker.index)
                self._idle.put(worker)
            except Exception as exc:  # leaves the pool one worker short, which the log says
                self._lost.add(worker.index)
                log.error("llm_worker_restart_failed", worker=worker.index, error=str(exc))

        threading.Thread(target=restart, name=f"llm-worker-{worker.index}-restart", daemon=True).start()

    def _on_every_worker(self, method: str, *args: Any) -> None:
        """Run on every worker, each once it is free (an adapter must be in all of them)."""
        taken: list[_Worker] = []
        while len(taken) < len(self._workers) - len(self._lost):
            if (worker := self._take()) is not None:
                taken.append(worker)
        call = _Call(method, args, {})
        try:
            for worker in taken:
                try:
                    worker.call(call)
                except WorkerDied:  # started again with the loads so far, then given this one
                    worker.restart(list(self._holds))
                    worker.call(call)
        finally:
            for worker in taken:
                self._idle.put(worker)

    # ------------------------------------------------------------- generation
    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        return list(self._run("chat_batch", list(conversations), params, adapters))

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        raise Unsupported(
            "streaming from an embedded model in worker processes; set the role's processes = 1"
        )

    # ---------------------------------------------------------------- scoring
    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        return self._run("score_choices", list(messages), tuple(choices), adapter, prefill)

    def score_choices_batch(
        self, requests: Sequence[ChoiceRequest], adapter: str | None = None
    ) -> list[ChoiceScores]:
        return list(self._run("score_choices_batch", list(requests), adapter))

    def score_choices_shared_prefix(
        self,
        messages: Conversation,
        suffixes: Sequence[str],
        choices: Sequence[str],
        adapter: str | None = None,
        prefill: str = "",
    ) -> list[ChoiceScores]:
        return list(
            self._run(
                "score_choices_shared_prefix",
                list(messages),
                list(suffixes),
                tuple(choices),
                adapter,
                prefill,
            )
        )

    def count_tokens(self, text: str) -> int:
        """Counted here by the embedded prompter's rule on the model's tokenizer, not behind a worker's
        running call."""
        if self._prompter is None:
            from transformers import AutoTokenizer

            from gravity_core.llm.embedded.prompting import Prompter
            from gravity_core.llm.models import resolve_model_path

            tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(self.endpoint.model))
            self._prompter = Prompter(tokenizer, self._context_window, self.endpoint.model)
        return self._prompter.count_tokens(text)

    # --------------------------------------------------------------- adapters
    def load_adapter(self, name: str, path: str) -> None:
        self._on_every_worker("load_adapter", name, path)
        self._holds.append((name, path))

    def unload_adapter(self, name: str) -> None:
        self._on_every_worker("unload_adapter", name)
        held = [i for i, (n, _) in enumerate(self._holds) if n == name]
        if held:
            del self._holds[held[-1]]

    def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.stop()
