"""report.json: the judge, the protocols, the sample, every aggregate per protocol, position bias, protocol
agreement, profile evidence, example descriptions, unusable judgments and skipped input."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from gravity_judge import methods as m
from gravity_judge import protocols as proto
from gravity_judge.drilldown import JUDGMENTS_FILE, examples, records
from gravity_judge.evaluate import EvaluationRun
from gravity_judge.evidence import summarize
from gravity_judge.metrics import aggregate
from gravity_judge.settings import JudgeSettings

FORMAT = "gravity-judge-report/v2"


def build_report(
    run: EvaluationRun,
    settings: JudgeSettings,
    sources: dict[str, str] | None = None,
    elapsed_s: float | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    evalset = run.evalset
    agg = aggregate(run, settings)
    primary = proto.primary(run.protocols)
    metrics = agg["by_protocol"][primary]
    units_by = {
        key: {k: v["units"] for k, v in metrics[f"by_{key}"].items()}
        for key in ("country", "genre_group", "genre_cluster", "fiction")
    }
    readers = {u.user_id: u.persona.evidence for u in evalset.units}
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
        "protocols": {
            "run": run.protocols,
            "primary": primary,
            "comparable_with_table2": proto.PAPER if proto.PAPER in run.protocols else None,
            "descriptions": {p: proto.DESCRIPTIONS[p] for p in run.protocols},
            "slot_priors": run.priors.to_dict() if proto.DEBIASED in run.protocols else None,
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
            "units_by_genre_cluster": units_by["genre_cluster"],
            "units_by_fiction": units_by["fiction"],
        },
        # The primary protocol's numbers (also under metrics_by_protocol[primary]).
        "metrics": metrics,
        "metrics_by_protocol": agg["by_protocol"],
        "ablations": agg["ablations"][primary],
        "ablations_by_protocol": agg["ablations"],
        "position_bias": agg["position_bias"],
        "agreement": agg["agreement"],
        "profile_evidence": summarize(readers.items()),
        "examples": examples(run, settings.example_readers),
        # written next to the report by write_report / the service (report_files with the run)
        "judgments": {"file": JUDGMENTS_FILE, "records": sum(1 for _ in records(run))},
        "unusable": run.unusable.to_dict(),
        "skipped": evalset.skips.to_dict(),
        "llm_usage": run.llm_usage,
        "timings_s": timings,
    }
