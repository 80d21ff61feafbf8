"""What one judge process holds and does (paper §4.1, App. D.3): personas, the judge model, judgments.

:class:`JudgeApp` owns the profile store personas are looked up in, the judge model (loaded in the
background) and the four judgments: Rank, Compare, Rate and a streaming Evaluate (the evaluation itself is
:func:`gravity_judge.pipeline.evaluate`). The gRPC servicer of :mod:`gravity_judge.service` routes to it. With
``[tracking] report_to`` set, every Evaluate also logs its report to the tracker (gravity_judge.tracked).
"""

from __future__ import annotations

import json
import math
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from gravity.v1 import judge_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.bus import Bus
from gravity_core.bus.kafka import dead_letter
from gravity_core.config import Settings
from gravity_core.embeddings import Embedder
from gravity_core.errors import ConfigError, Unavailable
from gravity_core.grpc import check_deadline, require
from gravity_core.identifiers import check_segment
from gravity_core.llm import LLMClient
from gravity_core.logging import get_logger
from gravity_core.profiles import ProfileStore
from gravity_core.skips import Skip, SkipLog
from gravity_core.tracking import open_tracker
from gravity_judge.evaluate import EvaluationRun
from gravity_judge.inputs import assemble, rows_from_request
from gravity_judge.judging import Candidate, Judge
from gravity_judge.persona import Persona
from gravity_judge.pipeline import evaluate, judge_llm
from gravity_judge.questions import MAX_CANDIDATES
from gravity_judge.report import report_files
from gravity_judge.settings import JudgeSettings
from gravity_judge.tracked import log_report, run_name_for

log = get_logger(__name__)
_PROTOCOLS = {
    judge_pb2.JUDGE_PROTOCOL_PAPER: "paper",
    judge_pb2.JUDGE_PROTOCOL_DEBIASED: "debiased",
    judge_pb2.JUDGE_PROTOCOL_BOTH: "both",
}


class _Cancelled(Exception):
    pass


class JudgeApp:
    """``context`` (a gRPC call's) bounds how long a request waits for the model and is checked before judging;
    ``bus``, when profiles are followed, also receives skipped Evaluate records (the DLQ)."""

    def __init__(self, settings: Settings, llm: LLMClient | None = None) -> None:
        self.settings = settings
        self.cfg = settings.section("judge", JudgeSettings)
        self.store = ProfileStore()
        self._llm = llm
        self.llm_loaded = threading.Event()
        self._llm_error: str | None = None
        if llm is not None:
            self.llm_loaded.set()
        self.bus: Bus | None = None

    # -------------------------------------------------------------- loading
    def load_profiles_file(self) -> None:
        """``judge.profiles_file`` into the profile store (a missing file is a configuration error)."""
        if not self.cfg.profiles_file:
            return
        if not Path(self.cfg.profiles_file).expanduser().is_file():
            raise ConfigError(f"judge.profiles_file {self.cfg.profiles_file} does not exist")
        skips = SkipLog()
        loaded = ProfileStore.from_jsonl(Path(self.cfg.profiles_file).expanduser(), skips)
        for profile in loaded:
            self.store.put(profile)
        log.info("profiles_loaded", count=len(loaded), skipped=skips.total, file=self.cfg.profiles_file)

    def load_llm(self) -> None:
        """The judge model, then the similarity metric's sentence-embedding model (in the background thread
        the service starts: on 2 cores its import and load take about 10 s of one core, which the first
        evaluation would otherwise wait for)."""
        try:
            self._llm = judge_llm(self.settings)
        except Exception as exc:  # reported by ready() and every RPC, never a dead thread
            self._llm_error = f"{type(exc).__name__}: {exc}"
            log.error("judge_model_failed", error=self._llm_error)
        finally:
            self.llm_loaded.set()
        try:
            Embedder(self.settings.embedding)  # cached process-wide; evaluations get this one
        except Exception as exc:  # the evaluation that needs it raises the same error to its caller
            log.warning("embedding_model_not_loaded", error=f"{type(exc).__name__}: {exc}")

    def model_ready(self) -> bool:
        return self.llm_loaded.is_set() and self._llm is not None

    # -------------------------------------------------------------- helpers
    def llm(self, context: grpc.ServicerContext | None = None) -> LLMClient:
        wait = self.cfg.model_wait_s
        if context is not None and context.time_remaining() is not None:
            wait = min(wait, max(0.0, context.time_remaining()))
        if not self.llm_loaded.wait(wait):
            raise Unavailable("the judge model is still loading; retry shortly")
        if self._llm is None:
            raise Unavailable(f"the judge model failed to load: {self._llm_error}")
        return self._llm

    def judge(self, context: grpc.ServicerContext | None = None) -> Judge:
        return Judge(self.llm(context), self.cfg)

    def persona(self, message: judge_pb2.JudgePersona, field: str = "persona") -> Persona:
        persona = Persona.from_proto(message)
        if persona.described:
            return persona
        require(
            bool(persona.user_id), field, "is required: give demographics/user_summary or a known user_id"
        )
        return Persona.from_profile(self.store.get(persona.user_id))

    def lookup(self, user_id: str) -> Persona | None:
        return Persona.from_profile(self.store.get(user_id)) if user_id in self.store else None

    # ------------------------------------------------------------- judgments
    def rank(self, request: judge_pb2.RankRequest, context: grpc.ServicerContext) -> judge_pb2.RankResponse:
        persona = self.persona(request.persona)
        candidates = _candidates(request.candidates, "candidates")
        require(
            2 <= len(candidates) <= MAX_CANDIDATES,
            "candidates",
            f"needs 2 to {MAX_CANDIDATES} candidates, got {len(candidates)}",
        )
        require(0 <= request.orders <= MAX_CANDIDATES, "orders", f"must be between 0 and {MAX_CANDIDATES}")
        judge = self.judge(context)
        check_deadline(context)
        result = judge.rank(
            persona,
            candidates,
            orders=request.orders or None,
            seed=request.seed if request.HasField("seed") else None,
        )
        return judge_pb2.RankResponse(
            ranking=result.ranking,
            first_place_probability=result.first_place,
            order_agreement=result.order_agreement,
            usable=result.usable,
        )

    def compare(
        self, request: judge_pb2.CompareRequest, context: grpc.ServicerContext
    ) -> judge_pb2.CompareResponse:
        persona = self.persona(request.persona)
        a = _candidate(request.a, "a")
        b = _candidate(request.b, "b")
        require(a.id != b.id, "b.id", "must differ from a.id")
        judge = self.judge(context)
        check_deadline(context)
        pair = judge.compare(persona, a, [b])[0]
        return judge_pb2.CompareResponse(
            preferred=pair.preferred if pair.usable else "",
            probability_a=pair.probability_a,
            orders_agree=pair.orders_agree,
            position_biased=pair.position_biased,
            usable=pair.usable,
        )

    def rate(self, request: judge_pb2.RateRequest, context: grpc.ServicerContext) -> judge_pb2.RateResponse:
        persona = self.persona(request.persona)
        candidate = _candidate(request.candidate, "candidate")
        judge = self.judge(context)
        check_deadline(context)
        rating = judge.rate(persona, [candidate])[0]
        return judge_pb2.RateResponse(
            score=0.0 if math.isnan(rating.score) else rating.score,
            distribution=list(rating.distribution),
            usable=rating.usable,
        )

    def evaluate_stream(
        self, request: judge_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> Iterator[judge_pb2.EvaluateResponse]:
        require(len(request.generations) > 0, "generations", "is required")
        require(
            request.protocol == judge_pb2.JUDGE_PROTOCOL_UNSPECIFIED or request.protocol in _PROTOCOLS,
            "protocol",
            f"unknown protocol {request.protocol}",
        )
        cfg = self.cfg
        if request.protocol in _PROTOCOLS:
            cfg = cfg.model_copy(update={"protocol": _PROTOCOLS[request.protocol]})
        name = request.report_name.strip()
        if name:
            check_segment("report_name", name)
        given: dict[str, Persona] = {}
        for i, message in enumerate(request.personas):
            require(bool(message.user_id), f"personas[{i}].user_id", "is required")
            given[message.user_id] = self.persona(message, f"personas[{i}]")

        def persona_for(user_id: str) -> Persona | None:
            return given.get(user_id) or self.lookup(user_id)

        skips = SkipLog(keep=max(200, len(request.generations)))
        if self.bus is not None:
            skips.on_skip = self.bus.skip_to_dlq
        evalset = assemble(rows_from_request(request.generations), persona_for, skips, (), cfg.extra_methods)

        events: queue.Queue[Any] = queue.Queue()
        cancelled = threading.Event()

        def track(items: Iterable[Any], stage: str, total: int) -> Iterator[Any]:
            events.put(judge_pb2.EvaluateProgress(done=0, total=total, stage=stage))
            for done, item in enumerate(items, start=1):
                if cancelled.is_set():
                    raise _Cancelled()
                yield item
                events.put(judge_pb2.EvaluateProgress(done=done, total=total, stage=stage))

        def work() -> None:
            try:
                run, report = evaluate(
                    evalset,
                    lambda: self.llm(None),
                    self.settings,
                    cfg,
                    track,
                    sources={"generations": "request"},
                )
                events.put(("done", (run, report)))
            except _Cancelled:
                events.put(("cancelled", None))
            except BaseException as exc:
                events.put(("error", exc))

        if evalset.units:
            self.llm(context)  # fail fast (UNAVAILABLE) while the model is loading
        worker = threading.Thread(target=work, name="judge-evaluate", daemon=True)
        worker.start()
        try:
            while True:
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    if not context.is_active():
                        cancelled.set()
                        return
                    continue
                if isinstance(event, judge_pb2.EvaluateProgress):
                    yield judge_pb2.EvaluateResponse(progress=event)
                    continue
                kind, payload = event
                if kind == "error":
                    raise payload
                if kind == "cancelled":
                    return
                run, report = payload
                yield judge_pb2.EvaluateResponse(result=self._result(report, run, name, skips))
                return
        finally:
            cancelled.set()

    def _result(
        self, report: dict[str, Any], run: EvaluationRun, name: str, skips: SkipLog
    ) -> judge_pb2.EvaluateResult:
        uri = ""
        settings = self.settings
        files = report_files(report, self.cfg.focus_method, run)
        if name:
            store = ArtifactStore.from_settings(settings)
            with store.staged_dir(f"reports/{name}") as stage:
                for filename, data in files.items():
                    (stage / filename).write_bytes(data)
            uri = store.uri(store.path(f"reports/{name}"))
            track_report(settings, report, store.path(f"reports/{name}"), list(files), name)
        elif settings.tracking.report_to:
            with tempfile.TemporaryDirectory(prefix="gravity-report-") as folder:
                for filename, data in files.items():
                    (Path(folder) / filename).write_bytes(data)
                track_report(settings, report, Path(folder), list(files), f"evaluate-{report['created_at']}")
        return judge_pb2.EvaluateResult(
            report_json=json.dumps(report, ensure_ascii=False, allow_nan=False),
            report_uri=uri,
            unusable_judgments=report["unusable"]["total"],
            skipped=[_dead_letter(s) for s in skips.examples],
        )


def _candidates(items: Sequence[judge_pb2.Candidate], field: str) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for i, c in enumerate(items):
        require(bool(c.id.strip()), f"{field}[{i}].id", "is required")
        require(c.id not in seen, f"{field}[{i}].id", f"duplicate candidate id {c.id!r}")
        require(bool(c.text.strip()), f"{field}[{i}].text", "is required")
        seen.add(c.id)
        out.append(Candidate(c.id, c.text))
    return out


def _candidate(message: judge_pb2.Candidate, field: str) -> Candidate:
    require(bool(message.id.strip()), f"{field}.id", "is required")
    require(bool(message.text.strip()), f"{field}.text", "is required")
    return Candidate(message.id, message.text)


def track_report(
    settings: Settings, report: dict[str, Any], folder: Path, filenames: list[str], name: str
) -> None:
    """Log the evaluation to the configured trackers (run ``judge-<report name>`` unless [tracking] run_name
    is set). A tracker failing (a server down) is logged as an error; the evaluation's answer stands."""
    if not settings.tracking.report_to:
        return
    try:
        tracker = open_tracker(settings, run_name_for(settings, None, name))
        if tracker is None:
            return
        try:
            log_report(tracker, report, {n: folder / n for n in filenames})
        finally:
            tracker.close()
        log.info("evaluation_tracked", tracked=tracker.describe())
    except Exception as exc:
        log.error("evaluation_tracking_failed", report=name, error=f"{type(exc).__name__}: {exc}")


def _dead_letter(skip: Skip) -> Any:
    return dead_letter(
        "judge",
        skip.reason,
        skip.detail,
        source_file=skip.source,
        source_line=skip.line,
        key=skip.record_id.encode() or None,
    )
