"""report.json: the judge, the sample, every aggregate, reliability, unusable judgments and skipped input."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gravity_judge import methods as m
from gravity_judge.evaluate import EvaluationRun
from gravity_judge.metrics import aggregate
from gravity_judge.settings import JudgeSettings

FORMAT = "gravity-judge-report/v1"


def build_report(
    run: EvaluationRun,
    settings: JudgeSettings,
    sources: dict[str, str] | None = None,
    elapsed_s: float | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    evalset = run.evalset
    metrics = aggregate(run, settings)
    units_by = {
        "country": {k: v["units"] for k, v in metrics["by_country"].items()},
        "genre_group": {k: v["units"] for k, v in metrics["by_genre_group"].items()},
    }
    timings = dict(run.timings_s)
    timings["aggregate"] = round(time.perf_counter() - started, 3)
    if elapsed_s is not None:
        timings["total"] = round(elapsed_s, 3)
    return {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "judge": {
            "model": run.judge_model,
            "backend": run.judge_backend,
            "answer_mode": run.answer_mode,
            "answers": dict(run.answer_methods),
            "metrics": run.metrics,
            "ranking_orders": settings.orders,
            "seed": settings.seed,
            "bootstrap_samples": settings.bootstrap_samples,
            "confidence": settings.confidence,
            "tie_margin": settings.tie_margin,
            "max_description_chars": settings.max_description_chars,
        },
        "inputs": {
            **(sources or {}),
            "rows_read": evalset.rows_read,
            "rows_used": evalset.rows_used,
            "rows_excluded": evalset.rows_excluded,
            "descriptions_truncated": run.truncated_descriptions,
        },
        "sample": {
            "users": evalset.users,
            "books": evalset.books,
            "units": len(evalset.units),
            "methods": [m.ORIGINAL, *evalset.methods],
            "ranked_methods": run.ranked_methods,
            "ablations": [k for k in evalset.methods if m.kind_of(k, settings.extra_methods) == "ablation"],
            "display_names": {k: m.display_name(k) for k in [m.ORIGINAL, *evalset.methods]},
            "units_by_country": units_by["country"],
            "units_by_genre_group": units_by["genre_group"],
        },
        "metrics": {k: metrics[k] for k in ("overall", "by_country", "by_genre_group")},
        "ablations": metrics["ablations"],
        "reliability": metrics["reliability"],
        "unusable": run.unusable.to_dict(),
        "skipped": evalset.skips.to_dict(),
        "llm_usage": run.llm_usage,
        "timings_s": timings,
    }
