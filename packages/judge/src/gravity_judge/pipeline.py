"""One evaluation from inputs to report, shared by `gravity judge` and the Evaluate RPC."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gravity_core.config import Settings
from gravity_core.embeddings import Embedder
from gravity_core.llm import LLMClient, llm_for_role
from gravity_core.logging import get_logger
from gravity_core.options import apply_options
from gravity_judge.evaluate import EvaluationRun, Evaluator, Tracker, untracked
from gravity_judge.inputs import EvaluationSet
from gravity_judge.judging import Judge
from gravity_judge.report import build_report
from gravity_judge.settings import JudgeSettings

log = get_logger(__name__)


def judge_settings(settings: Settings, **overrides: Any) -> JudgeSettings:
    """The [judge] section with command-line overrides (None values ignored), validated again."""
    return apply_options(settings.section("judge", JudgeSettings), **overrides)


def judge_llm(settings: Settings) -> LLMClient:
    return llm_for_role(settings, "judge")


def concurrency_for(settings: Settings) -> int:
    """Units judged at once: one per worker process of an embedded model (one process serializes its calls
    anyway), up to ``concurrency`` against an endpoint."""
    endpoint = settings.llm.role("judge")
    return endpoint.processes if endpoint.backend == "embedded" else max(1, endpoint.concurrency)


def evaluate(
    evalset: EvaluationSet,
    llm: Callable[[], LLMClient],
    settings: Settings,
    judge_cfg: JudgeSettings,
    track: Tracker = untracked,
    sources: dict[str, str] | None = None,
    embedder: Callable[[], Embedder] | None = None,
) -> tuple[EvaluationRun, dict[str, Any]]:
    """``llm`` is called only when some unit can be judged."""
    started = time.perf_counter()
    endpoint = settings.llm.role("judge")
    evaluator = Evaluator(
        lambda: Judge(llm(), judge_cfg),
        judge_cfg,
        embedder=embedder or (lambda: Embedder(settings.embedding)),
        concurrency=concurrency_for(settings),
        label=(endpoint.model, endpoint.backend),
    )
    run = evaluator.run(evalset, track)
    report = build_report(run, judge_cfg, sources, elapsed_s=time.perf_counter() - started)
    log.info(
        "evaluation_done",
        units=len(evalset.units),
        methods=len(evalset.methods),
        skipped=evalset.skips.total,
        unusable=run.unusable.total,
        seconds=round(time.perf_counter() - started, 2),
    )
    return run, report
