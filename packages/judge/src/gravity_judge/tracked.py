"""The evaluation in the experiment tracker (issue 18; gravity_core.tracking, the ``[tracking]`` section).

When a tracker is configured, an evaluation logs, per protocol run (``paper`` §4.1/D.3 and ``debiased``), every
method's Table 2 numbers overall and per country and genre group (Table 3, Figure 3), the position-bias rates
and the protocols' agreement, as scalars tagged ``judge/<protocol>/<group>/<method>/<metric>``; then the
Markdown report as text and every report file (report.json, .md, .html, judgments.jsonl). Training logs to the
same tracker, so with one run name a run's curves and its judge metrics sit together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gravity_core.config import Settings
from gravity_core.identifiers import check_segment
from gravity_core.tracking import Trackers

PREFIX = "judge"
METRICS = ("top1_win_rate", "preference_gain", "interestingness", "similarity")
BREAKDOWNS = (("by_country", "country"), ("by_genre_group", "genre"))
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_name_for(settings: Settings, run_name: str | None, fallback: str) -> str:
    """The run's name in the tracker: the one given, else ``[tracking] run_name``, else ``judge-<fallback>``
    (made a safe path segment: TensorBoard runs are directories)."""
    if run_name:
        return check_segment("--run-name", run_name)
    if settings.tracking.run_name:
        return check_segment("tracking.run_name", settings.tracking.run_name)
    return f"{PREFIX}-{_UNSAFE.sub('-', fallback).strip('-.') or 'report'}"[:128]


def _tag(name: str) -> str:
    # a group name becomes one level of the tag ("Business / Economics" must not add levels)
    return name.replace("/", "-").strip() or "unknown"


def _estimates(node: Any, path: str, out: dict[str, float]) -> None:
    """Every estimate ({"value", "ci_low", ...}) under ``node`` with a value, tagged by its path."""
    if not isinstance(node, Mapping):
        return
    if "value" in node and "ci_low" in node:
        if isinstance(node["value"], int | float):
            out[path] = float(node["value"])
        return
    for key, child in node.items():
        _estimates(child, f"{path}/{_tag(str(key))}", out)


def _methods(methods: Mapping[str, Any], path: str, out: dict[str, float]) -> None:
    for method, entry in methods.items():
        for metric in METRICS:
            estimate = entry.get(metric)
            if isinstance(estimate, Mapping) and isinstance(estimate.get("value"), int | float):
                out[f"{path}/{method}/{metric}"] = float(estimate["value"])


def report_scalars(report: Mapping[str, Any]) -> dict[str, float]:
    """The report's numbers as tracker scalars (absent values — a metric not run, a group too small — are
    left out, never logged as 0)."""
    out: dict[str, float] = {f"{PREFIX}/units": float(report["sample"]["units"])}
    out[f"{PREFIX}/unusable_judgments"] = float(report["unusable"]["total"])
    for protocol, metrics in report["metrics_by_protocol"].items():
        base = f"{PREFIX}/{protocol}"
        _methods(metrics["overall"], f"{base}/overall", out)
        for key, label in BREAKDOWNS:
            for group, block in metrics[key].items():
                _methods(block["methods"], f"{base}/{label}/{_tag(group)}", out)
    for protocol, bias in (report.get("position_bias") or {}).items():
        _estimates(bias, f"{PREFIX}/{protocol}/position_bias", out)
    _estimates(report.get("agreement"), f"{PREFIX}/agreement", out)
    return out


def log_report(tracker: Trackers, report: Mapping[str, Any], files: Mapping[str, Path]) -> None:
    tracker.log_metrics(report_scalars(report))
    markdown = files.get("report.md")
    if markdown is not None:
        tracker.log_text(f"{PREFIX}/report", markdown.read_text(encoding="utf-8"))
    for path in files.values():
        tracker.log_file(path)
