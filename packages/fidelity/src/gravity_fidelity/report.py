"""fidelity.json and fidelity.md: every measured section, and the one table that sums them up.

Each command writes its own section (``recovery.json``, ``learning.json``, ``swap.json``) into the output
directory; :func:`write_report` composes whatever sections exist, so a single command's run has a report
too. Numbers are what the models did on this run's planted readers, never thresholds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gravity_core import names
from gravity_core.files import write_json, write_text
from gravity_fidelity.learning import CONTROL, FACETS, NAMED
from gravity_fidelity.truth import PLANT_FILE

FORMAT = "gravity-fidelity-report/v1"
SECTIONS = {"recovery": "recovery.json", "learning": "learning.json", "swap": "swap.json"}
REPORT_JSON = "fidelity.json"
REPORT_MD = "fidelity.md"


def _f(x: Any) -> str:
    return "–" if x is None else f"{x:.3f}"


def _signed(x: Any) -> str:
    return "–" if x is None else f"{x:+.3f}"


def _vs(model: Any, baseline: Any) -> str:
    """A baseline's score and the model's as a multiple of it (×1.50: half as good again)."""
    if baseline is None:
        return "–"
    ratio = f" (model ×{model / baseline:.2f})" if model is not None and baseline else ""
    return f"{baseline:.3f}{ratio}"


def recovery_rows(recovery: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    rows = []
    for r in recovery:
        m = f" ({r['model']})"
        se, su, tr = r["stances_expressed"], r["stances_unexpressed"], r["traits"]
        rows.append(
            (
                f"stance macro-F1, expressed statements{m}",
                f"{_f(se['macro_f1'])} (acc {_f(se['accuracy'])}, n {se['n']}, unreadable {se['invalid']})",
                f"majority {_vs(se['macro_f1'], se['majority']['macro_f1'])}, "
                f"random {_vs(se['macro_f1'], se['random']['macro_f1'])}",
            )
        )
        rows.append(
            (
                f"stance accuracy, unexpressed statements (neutral is right){m}",
                f"{_f(su['accuracy'])} (n {su['n']}, unreadable {su['invalid']})",
                f"majority {_vs(su['accuracy'], su['majority']['accuracy'])}, "
                f"random {_vs(su['accuracy'], su['random']['accuracy'])}",
            )
        )
        rows.append(
            (
                f"trait accuracy, expressed traits{m}",
                f"{_f(tr['accuracy'])} (n {tr['n']}, UNKNOWN {r['unknown_traits']})",
                f"majority {_vs(tr['accuracy'], tr['majority']['accuracy'])}, "
                f"random {_vs(tr['accuracy'], tr['random']['accuracy'])}",
            )
        )
        g = r["genres"]
        rows.append(
            (
                f"genre precision / recall{m}",
                f"{_f(g['precision'])} / {_f(g['recall'])}",
                "counted from the reviews' catalog genres (no model)",
            )
        )
        d = r["demographics_pooled"]
        if d["n"]:
            rows.append(
                (
                    f"demographics accuracy, withheld fields{m}",
                    f"{_f(d['accuracy'])} (n {d['n']}, unknown {d.get('unknown', 0)})",
                    f"majority {_vs(d['accuracy'], d['majority'])}, random {_vs(d['accuracy'], d['random'])}",
                )
            )
    return rows


def recovery_line(recovery: dict[str, Any]) -> str:
    """One line for a demo: how well the profiler read planted readers, beside the baselines."""
    se, tr, g = recovery["stances_expressed"], recovery["traits"], recovery["genres"]
    return (
        f"recovery on {recovery['readers']} planted readers ({recovery['model']}): stance macro-F1 "
        f"{_f(se['macro_f1'])} (majority {_f(se['majority']['macro_f1'])}, random {_f(se['random']['macro_f1'])}), "
        f"traits {_f(tr['accuracy'])} (majority {_f(tr['majority']['accuracy'])}), genre recall {_f(g['recall'])}"
    )


def learning_rows(learning: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for facet in (*FACETS[:2], NAMED, FACETS[2]):
        a = learning["accuracy"].get(facet)
        if not a or not a["n"]:
            continue
        rows.append(
            (
                f"held-out preference accuracy, {facet}",
                f"base {_f(a['base'])} / GRAVITY {_f(a[names.GRAVITY])} / control {_f(a[CONTROL])} (n {a['n']})",
                f"GRAVITY − control {_interval(a['gap'])}",
            )
        )
        implicit = a.get("implicit_reward_accuracy")
        if implicit:
            rows.append(
                (
                    f"  margin raised over base (DPO implicit reward > 0), {facet}",
                    f"GRAVITY {_f(implicit[names.GRAVITY])} / control {_f(implicit[CONTROL])}",
                    f"GRAVITY − control {_interval(implicit['gap'])}",
                )
            )
    return rows


def _interval(gap: dict[str, Any]) -> str:
    return f"{_signed(gap['value'])} [{_signed(gap['ci_low'])}, {_signed(gap['ci_high'])}]"


def swap_rows(swap: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    rows = []
    for s in swap:
        low, high = s.get("swap_rate_ci") or (None, None)
        rows.append(
            (
                f"persona-swap rate ({s['judge']}, {s['method']} descriptions)",
                f"{_f(s['swap_rate'])} ({s['own_wins']} of {s['usable']}, 95% CI [{_f(low)}, {_f(high)}]; "
                f"ties {s['ties']}, position-biased {s['position_biased']})",
                "chance 0.500",
            )
        )
    return rows


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    if "recovery" in report:
        rows += recovery_rows(report["recovery"])
    if "learning" in report:
        rows += learning_rows(report["learning"])
    if "swap" in report:
        rows += swap_rows(report["swap"])
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    plant = report.get("plant", {})
    lines = [
        "# GRAVITY fidelity report",
        "",
        f"{plant.get('readers', '?')} planted readers (seed {plant.get('seed', '?')}). Every number is what this run's "
        "models did on readers whose truth is known; baselines are computed on the same items.",
        "",
        "| measure | result | compared with |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in table_rows(report)]
    for r in report.get("recovery", []):
        lines += ["", f"## Recovery: what {r['model']} answered", ""]
        for key, title in (
            ("stances_expressed", "expressed statements"),
            ("stances_unexpressed", "unexpressed statements"),
            ("traits", "expressed traits"),
        ):
            confusion = r[key].get("confusion", {})
            if confusion:
                cells = "; ".join(
                    f"true {t}: " + ", ".join(f"{p} {n}" for p, n in row.items())
                    for t, row in confusion.items()
                )
                lines.append(f"* {title} — {cells}")
    if "learning" in report:
        learning = report["learning"]
        lines += [
            "",
            "## Learning",
            "",
            f"Base model {learning['base_model']}; pairs built / train / test: "
            f"{learning['pairs']['built']['all']} / {learning['pairs']['train']['all']} / {learning['pairs']['test']['all']}; "
            f"held out: {learning['hold_out']['statements']} statements, {learning['hold_out']['books']} books, "
            f"{learning['hold_out']['genres']} genres, {learning['hold_out']['items']} items.",
            "",
            "| adapter | steps | train rows | held-out eval loss | seconds |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, t in learning["training"].items():
            lines.append(
                f"| {name} | {t['steps']} | {t['train_rows']} | {_f(t['metrics'].get('eval_loss'))} | {t['seconds']} |"
            )
    if "timings_s" in report:
        lines += ["", "## Timings (seconds)", "", "| stage | seconds |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in report["timings_s"].items()]
    return "\n".join(lines) + "\n"


def collect(out: Path, truth_dir: Path | None = None) -> dict[str, Any]:
    """Every section present in ``out`` (and the plant manifest of ``truth_dir``) as one report."""
    report: dict[str, Any] = {"format": FORMAT}
    plant = (truth_dir or out) / PLANT_FILE
    if plant.is_file():
        report["plant"] = json.loads(plant.read_text(encoding="utf-8"))
    for key, name in SECTIONS.items():
        path = out / name
        if path.is_file():
            report[key] = json.loads(path.read_text(encoding="utf-8"))
    timings = out / "timings.json"
    if timings.is_file():
        report["timings_s"] = json.loads(timings.read_text(encoding="utf-8"))
    return report


def write_section(out: Path, key: str, data: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SECTIONS[key], data, durable=False)


def write_report(out: Path, truth_dir: Path | None = None) -> dict[str, Any]:
    report = collect(out, truth_dir)
    write_json(out / REPORT_JSON, report, durable=False)
    write_text(out / REPORT_MD, markdown(report), durable=False)
    return report
