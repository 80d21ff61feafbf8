"""The judge's report as terminal text: the Table 2 layout with both protocols side by side, the position-bias
and agreement lines. Shared by `gravity judge` and `gravity demo`."""

from __future__ import annotations

from typing import Any

from gravity_core.cli.common import summary_table
from gravity_judge.report.tables import fmt


def summary_text(report: dict[str, Any]) -> str:
    """The methods table (paper = comparable with Table 2) followed by the bias and agreement lines."""
    protocols = report["protocols"]["run"]
    by = report["metrics_by_protocol"]
    rows = []
    for method in report["sample"]["methods"]:
        entries = [by[p]["overall"].get(method) for p in protocols]
        if any(e is None for e in entries):
            continue
        row: list[str] = [entries[0]["display"]]
        for metric, digits in (("top1_win_rate", 1), ("preference_gain", 1), ("interestingness", 2)):
            row += [fmt(e[metric], digits, ci=False) for e in entries]
        row.append(fmt(entries[0]["similarity"], ci=False))
        rows.append(tuple(row))
    headers = ["method"]
    for name in ("top-1 %", "gain %", "int."):
        headers += [f"{name} {p}" for p in protocols]
    headers.append("similarity")
    sample = report["sample"]
    table = summary_table(
        f"gravity judge — {report['judge']['model']} ({report['judge']['backend']}), {sample['units']} units, "
        f"{sample['users']} users; protocols: {', '.join(protocols)} (paper = comparable with Table 2)",
        rows,
        headers=tuple(headers),
    )
    return "\n".join([table, *bias_lines(report)])


def bias_lines(report: dict[str, Any]) -> list[str]:
    bias, lines = report["position_bias"], []
    if "paper" in bias:
        top = bias["paper"]["top_pick"]
        lines.append(
            f"position bias, paper rankings: first place in slot A {fmt(top['first_slot_rate'], ci=False)}% "
            f"(chance {fmt({'value': top['chance_rate']}, ci=False)}%); "
            f"{bias['paper']['unusable_rankings']} of {bias['paper']['rankings']} ranking(s) unparsable"
        )
    if "debiased" in bias:
        rk, pw = bias["debiased"]["ranking"], bias["debiased"]["pairwise"]
        lines.append(
            f"position bias, debiased top picks in slot A: {fmt(rk['before']['first_slot_rate'], ci=False)}% before, "
            f"{fmt(rk['after']['first_slot_rate'], ci=False)}% after correction "
            f"(chance {fmt({'value': rk['before']['chance_rate']}, ci=False)}%); pairs with the same slot in both "
            f"orders: {fmt(pw['position_bias_rate']['before'], ci=False)}% before, "
            f"{fmt(pw['position_bias_rate']['after'], ci=False)}% after"
        )
    agreement = report.get("agreement")
    if agreement:
        lines.append(
            f"protocol agreement: same top-1 {fmt(agreement['same_top1'], ci=False)}%, "
            f"Kendall tau {fmt(agreement['kendall_tau'], 2, ci=False)} over {agreement['units']} unit(s)"
        )
    return lines
