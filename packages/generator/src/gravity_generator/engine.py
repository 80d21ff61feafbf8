"""Personalization: from (profile, book, method) to a description, for one request or a whole batch.

The service and the batch command share this code. Jobs move through their method's stages together, so
every model call of a stage is one batched call (TriAgent: rewrite -> edit suggestions -> final rewrite;
LaMP: retrieval, then generation). Each job ends with its own result or its own error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from gravity.v1 import profile_pb2
from gravity_core import names
from gravity_core.errors import GravityError, InvalidInput, NotFound
from gravity_core.llm import Completion, GenerationParams, StreamEvent
from gravity_core.logging import get_logger
from gravity_generator import methods as m
from gravity_generator.completion import Call, Completer, Outcome, user_message
from gravity_generator.fitting import TEMPLATE_OVERHEAD_TOKENS, fit_prompt
from gravity_generator.lamp import LampRetriever
from gravity_generator.registry import NO_ADAPTER, AdapterRegistry, Lease

log = get_logger(__name__)


class ProfileIncomplete(GravityError):
    """A stored profile lacks what the method needs (answered as FAILED_PRECONDITION)."""


@dataclass
class Job:
    profile: profile_pb2.UserProfile
    book: m.BookInput
    method: str
    params: GenerationParams
    # Serve with this adapter (by name) instead of the method's current one.
    adapter: str = ""
    # The profile came with the request (bad content is the caller's INVALID_ARGUMENT).
    inline_profile: bool = False
    deadline: float | None = None
    alive: Callable[[], bool] | None = None


@dataclass
class Result:
    text: str
    method: str
    model: str
    adapter: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    warnings: list[str] = field(default_factory=list)
    # Why the final generation ended: "stop" (the model finished) or "length" (max_tokens reached).
    finish_reason: str = "stop"


@dataclass
class MethodStatus:
    name: str
    description: str
    requires_adapter: bool
    available: bool
    adapter: str = ""


@dataclass
class _Work:
    job: Job
    started: float
    lease: Lease = NO_ADAPTER
    final: Call | None = None
    result: Result | None = None
    error: Exception | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    warnings: list[str] = field(default_factory=list)
    # Outputs of the stages before the final call (TriAgent: the first rewrite, then the edits).
    stage_texts: list[str] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return self.error is None and self.result is None

    def add_usage(self, completion: Completion) -> None:
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        if completion.truncated_prompt:
            self.warnings.append("the prompt was shortened by the backend to fit the model's context")


class Personalizer:
    def __init__(
        self,
        writer: Completer,
        author: Completer,
        registry: AdapterRegistry,
        lamp: LampRetriever,
        context_window: int,
    ) -> None:
        self.writer = writer
        self.author = author
        self.registry = registry
        self.lamp = lamp
        self._context_window = context_window

    # ------------------------------------------------------------------ catalogue
    def methods(self) -> list[MethodStatus]:
        current = self.registry.current()
        out = [MethodStatus(name, m.describe_method(name), False, True) for name in m.PROMPT_METHODS]
        for name in self.registry.methods():
            adapter = current.get(name)
            out.append(
                MethodStatus(
                    name, m.describe_method(name), True, adapter is not None, adapter.name if adapter else ""
                )
            )
        return out

    def check_method(self, method: str) -> None:
        if not method:
            raise InvalidInput("method", "is required")
        if method in m.PROMPT_METHODS or method in self.registry.methods():
            return
        known = ", ".join(s.name for s in self.methods())
        raise NotFound("method", f"unknown method {method!r} (known: {known})")

    def context_window(self, completer: Completer) -> int:
        """The configured window, capped by the model's own where the backend reports it."""
        own = completer.llm.info.context_window
        return min(own, self._context_window) if own else self._context_window

    # ------------------------------------------------------------------ running
    def run(self, jobs: Sequence[Job]) -> list[Result | Exception]:
        """One outcome per job, in order; every model call of a stage is batched across jobs."""
        works = [self._begin(job) for job in jobs]
        try:
            self._prepare(works)
            finals = [w for w in works if w.pending and w.final is not None]
            outcomes = self._complete(self.writer, [w.final for w in finals if w.final is not None])
            for w, outcome in zip(finals, outcomes, strict=True):
                self._finish(w, outcome)
        finally:
            for w in works:
                w.lease.release()
        return [w.result if w.result is not None else (w.error or RuntimeError("no outcome")) for w in works]

    def run_one(self, job: Job) -> Result:
        outcome = self.run([job])[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def stream(self, job: Job) -> Iterator[str | Result]:
        """Text deltas as the final stage generates them, then the :class:`Result`."""
        work = self._begin(job)
        try:
            if work.error is not None:
                raise work.error
            if work.result is not None:  # original: nothing to generate
                yield work.result.text
                yield work.result
                return
            self._prepare([work])
            if work.error is not None:
                raise work.error
            assert work.final is not None
            completion: Completion | None = None
            for event in self._stream_call(work.final):
                if event.delta:
                    yield event.delta
                if event.final is not None:
                    completion = event.final
            if completion is None:
                raise RuntimeError("the stream ended without a final completion")
            self._finish(work, completion)
            if work.error is not None:
                raise work.error
            assert work.result is not None
            yield work.result
        finally:
            work.lease.release()

    # ------------------------------------------------------------------ stages
    def _begin(self, job: Job) -> _Work:
        work = _Work(job, time.monotonic())
        try:
            self.check_method(job.method)
            if job.method == names.ORIGINAL:
                if job.adapter:
                    raise InvalidInput(
                        "adapter", "method 'original' makes no model call and takes no adapter"
                    )
                work.result = Result(job.book.description, job.method, "", "", 0, 0, 0.0)
                return work
            if job.method in (names.USER_SUMMARY, names.TRI_AGENT) and not job.profile.user_summary.strip():
                message = f"is empty; method {job.method!r} needs the reader summary the profiler writes"
                if job.inline_profile:
                    raise InvalidInput("profile.user_summary", message)
                raise ProfileIncomplete(f"profile.user_summary of user {job.profile.user_id!r} {message}")
            if job.method in m.PROMPT_METHODS:
                if job.adapter:
                    raise InvalidInput(
                        "adapter", f"method {job.method!r} is a prompt method and takes no adapter"
                    )
            else:
                work.lease = self.registry.acquire(job.method, job.adapter)
        except Exception as exc:
            work.error = exc
        return work

    def _prepare(self, works: Sequence[_Work]) -> None:
        """Run everything before each job's final writer call and set ``work.final``."""
        by_method: dict[str, list[_Work]] = {}
        for w in works:
            if w.pending:
                by_method.setdefault(w.job.method, []).append(w)
        for method, group in by_method.items():
            try:
                if method == names.LAMP:
                    self._prepare_lamp(group)
                elif method == names.TRI_AGENT:
                    self._prepare_tri_agent(group)
                else:
                    for w in group:
                        self._set_final(w, self._single_stage_spec(w.job), adapter=w.lease.name)
            except Exception as exc:  # e.g. the embedder failed: the whole group fails, not the process
                log.exception("prepare_failed", method=method)
                for w in group:
                    if w.pending:
                        w.error = exc

    def _single_stage_spec(self, job: Job) -> m.PromptSpec:
        if job.method == names.BASE_REWRITE:
            return m.base_rewrite(job.book)
        if job.method == names.DEMO_BASED:
            return m.demo_based(job.profile, job.book)
        if job.method == names.USER_SUMMARY:
            return m.user_summary(job.profile, job.book)
        return m.adapter_prompt(job.method, job.profile, job.book)

    def _prepare_lamp(self, group: Sequence[_Work]) -> None:
        retrieved = self.lamp.retrieve([(w.job.profile, w.job.book) for w in group])
        for w, found in zip(group, retrieved, strict=True):
            w.warnings.extend(found.warnings)
            self._set_final(w, m.lamp(w.job.book, found.reviews))

    def _prepare_tri_agent(self, group: Sequence[_Work]) -> None:
        # (1) BaseRewrite on the writer
        first = self._stage(self.writer, group, lambda w: m.base_rewrite(w.job.book))
        # (2) edit suggestions from the user summary, by the author role
        edits = self._stage(self.author, first, lambda w: m.tri_agent_edits(w.job.profile, w.stage_texts[0]))
        # (3) the final rewrite of the first one with the edits: the job's final writer call
        for w in edits:
            rewrite, suggested = w.stage_texts
            self._set_final(w, m.tri_agent_final(w.job.profile, w.job.book, suggested, rewrite))

    def _stage(
        self, completer: Completer, group: Sequence[_Work], spec_for: Callable[[_Work], m.PromptSpec]
    ) -> list[_Work]:
        live, calls = [], []
        for w in group:
            if not w.pending:
                continue
            try:
                calls.append(self._call(completer, w, spec_for(w)))
                live.append(w)
            except Exception as exc:
                w.error = exc
        outcomes = self._complete(completer, calls)
        done = []
        for w, outcome in zip(live, outcomes, strict=True):
            if isinstance(outcome, Exception):
                w.error = outcome
                continue
            w.add_usage(outcome)
            w.stage_texts.append(outcome.text)
            done.append(w)
        return done

    def _set_final(self, w: _Work, spec: m.PromptSpec, adapter: str | None = None) -> None:
        try:
            w.final = self._call(self.writer, w, spec, adapter)
        except Exception as exc:
            w.error = exc

    def _call(self, completer: Completer, w: _Work, spec: m.PromptSpec, adapter: str | None = None) -> Call:
        window = self.context_window(completer)
        budget = window - w.job.params.max_tokens - TEMPLATE_OVERHEAD_TOKENS
        fitted = fit_prompt(spec, budget, completer.llm.count_tokens, window)
        w.warnings.extend(fitted.warnings)
        return Call(user_message(fitted.text), w.job.params, adapter, w.job.deadline, w.job.alive)

    def _finish(self, w: _Work, outcome: Outcome) -> None:
        if isinstance(outcome, Exception):
            w.error = outcome
            return
        w.add_usage(outcome)
        if not outcome.text.strip():
            w.warnings.append("the model returned an empty description")
        w.result = Result(
            outcome.text,
            w.job.method,
            self.writer.llm.info.name,
            w.lease.name or "",
            w.prompt_tokens,
            w.completion_tokens,
            (time.monotonic() - w.started) * 1000.0,
            list(dict.fromkeys(w.warnings)),
            outcome.finish_reason,
        )

    # ------------------------------------------------------------------ backend calls
    def _complete(self, completer: Completer, calls: Sequence[Call]) -> list[Outcome]:
        if not calls:
            return []
        outcomes = completer.complete(calls)
        lost = [i for i, o in enumerate(outcomes) if _adapter_forgotten(o, calls[i])]
        if lost:
            reloaded = {name for name in {calls[i].adapter for i in lost} if name and self._reload(name)}
            again = [i for i in lost if calls[i].adapter in reloaded]
            for i, outcome in zip(again, completer.complete([calls[i] for i in again]), strict=True):
                outcomes[i] = outcome
        return outcomes

    def _stream_call(self, call: Call) -> Iterator[StreamEvent]:
        expired = call.expired()
        if expired is not None:
            raise expired
        llm = self.writer.llm
        try:
            stream = llm.stream_chat(list(call.messages), call.params, call.adapter)
            first = next(stream, None)
        except NotFound as exc:
            if not (_adapter_forgotten(exc, call) and call.adapter and self._reload(call.adapter)):
                raise
            stream = llm.stream_chat(list(call.messages), call.params, call.adapter)
            first = next(stream, None)
        if first is not None:
            yield first
            yield from stream

    def _reload(self, name: str) -> bool:
        try:
            return self.registry.reload(name)
        except Exception as exc:
            log.warning("adapter_reload_failed", adapter=name, error=str(exc))
            return False


def _adapter_forgotten(outcome: Outcome, call: Call) -> bool:
    """An endpoint that no longer serves an adapter we loaded (vLLM restarted and lost runtime adapters)."""
    return isinstance(outcome, NotFound) and outcome.field == "model" and bool(call.adapter)
