"""The report's sections and tables, built once from report.json and rendered as Markdown or HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gravity_judge.methods import ORIGINAL

DASH = "–"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    title: str
    level: int = 2
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    # Name of a figure (see plots.py) shown after the tables in HTML.
    figures: list[str] = field(default_factory=list)


def fmt(estimate: dict[str, Any] | None, digits: int = 1, ci: bool = True) -> str:
    if not estimate or estimate.get("value") is None:
        return DASH
    text = f"{estimate['value']:.{digits}f}"
    if ci and estimate.get("ci_low") is not None:
        text += f" [{estimate['ci_low']:.{digits}f}, {estimate['ci_high']:.{digits}f}]"
    return text


TABLE2_HEADERS = ["Method", "Top-1 Win (%)", "Pref. Gain (%)", "Int. Score", "Text Similarity", "Units"]


def method_table(per_method: dict[str, Any], methods: list[str], caption: str = "") -> Table:
    rows = []
    for method in methods:
        e = per_method.get(method)
        if e is None:
            continue
        n = max(
            (x or {}).get("n", 0)
            for x in (e["top1_win_rate"], e["preference_gain"], e["interestingness"], e["similarity"])
        )
        rows.append(
            [
                e["display"],
                fmt(e["top1_win_rate"]),
                fmt(e["preference_gain"]),
                fmt(e["interestingness"], 2),
                fmt(e["similarity"]),
                str(n),
            ]
        )
    return Table(TABLE2_HEADERS, rows, caption)


def _main_methods(report: dict[str, Any]) -> list[str]:
    ablations = set(report["sample"]["ablations"])
    return [k for k in report["sample"]["methods"] if k not in ablations]


def sections(report: dict[str, Any]) -> list[Section]:
    judge, sample, metrics = report["judge"], report["sample"], report["metrics"]
    main = _main_methods(report)
    names = sample["display_names"]
    conf = round(judge["confidence"] * 100)
    out: list[Section] = []

    answers = ", ".join(f"{k}: {v}" for k, v in sorted(judge["answers"].items())) or "none"
    out.append(
        Section(
            "Setup",
            paragraphs=[
                f"Judge: {judge['model']} ({judge['backend']} backend, answer mode {judge['answer_mode']}; "
                f"answers read by {answers}). Top-1 ranking over {judge['ranking_orders']} shuffled orders; "
                f"pairwise preference asked in both orders; seed {judge['seed']}; "
                f"{judge['bootstrap_samples']} bootstrap resamples of (user, book) units, {conf}% intervals in brackets.",
                f"Sample: {sample['users']} users, {sample['books']} books, {sample['units']} (user, book) units, "
                f"{len(sample['methods'])} methods including the original. "
                f"Rows read {report['inputs']['rows_read']}, used {report['inputs']['rows_used']}, "
                f"skipped {report['skipped']['total']}, excluded by --methods {report['inputs']['rows_excluded']}; "
                f"{report['inputs']['descriptions_truncated']} description(s) cut to "
                f"{judge['max_description_chars']} characters.",
            ],
        )
    )
    out.append(
        Section(
            "Personalization metrics (Table 2)",
            tables=[method_table(metrics["overall"], main)],
            figures=["win_rate"],
        )
    )

    reliability = report["reliability"]
    pw, rk = reliability["pairwise"], reliability["ranking"]
    chance = rk["chance_first_position_rate"]
    out.append(
        Section(
            "Judge reliability",
            paragraphs=[
                "Position bias: in a pair, the judge picked the same slot (A or B) in both orders; in a ranking, "
                "its top pick was the description shown first. Order agreement: both pair orders picked the same "
                "description; ranking orders whose top pick matched the overall winner."
            ],
            tables=[
                Table(
                    ["Measure", "Value (%)", "n"],
                    [
                        ["Pairwise position-bias rate", fmt(pw["position_bias_rate"]), str(pw["pairs"])],
                        ["Pairwise order agreement", fmt(pw["order_agreement"]), str(pw["pairs"])],
                        ["Pairwise ties", str(pw["ties"]), str(pw["pairs"])],
                        ["Ranking order agreement", fmt(rk["order_agreement"]), str(rk["units"])],
                        [
                            "Ranking first-position picks"
                            + (f" (chance {chance:.1f})" if chance is not None else ""),
                            fmt(rk["first_position_rate"]),
                            str(rk["units"]),
                        ],
                    ],
                )
            ],
        )
    )

    country_tables = [
        method_table(v["methods"], main, caption=f"{country} ({v['units']} units)")
        for country, v in metrics["by_country"].items()
    ]
    out.append(
        Section(
            "By country (Tables 14–17)",
            tables=country_tables,
            figures=["preference_by_country"],
        )
    )

    gain_methods = [k for k in main if k != ORIGINAL]
    genre_rows = [
        [genre, str(v["units"])] + [fmt(v["methods"][k]["preference_gain"], ci=False) for k in gain_methods]
        for genre, v in metrics["by_genre_group"].items()
    ]
    out.append(
        Section(
            "Preference gain (%) by genre group (Figure 3)",
            tables=[Table(["Genre group", "Units", *[names[k] for k in gain_methods]], genre_rows)],
            figures=["preference_by_genre"],
        )
    )

    ablations = report["ablations"]
    if ablations["tests"] or ablations.get("note"):
        rows = [
            [
                f"{names.get(ablations['reference'], ablations['reference'])} (reference)",
                _pct(ablations["tests"][0]["reference_gain"]) if ablations["tests"] else DASH,
                DASH,
                DASH,
                DASH,
            ]
        ]
        for t in ablations["tests"]:
            w = t["wilcoxon"]
            rows.append(
                [
                    t["display"],
                    _pct(t["preference_gain"]),
                    fmt(t["delta"]) + w["stars"],
                    DASH if w["p_value"] is None else f"{w['p_value']:.4f}",
                    str(t["n_pairs"]),
                ]
            )
        paragraphs = [
            "Δ: the variant's preference gain minus the reference's on the units both were judged on. Paired "
            "Wilcoxon signed-rank test on each unit's probability of preferring the output over the original: "
            "* p < 0.05, ** p < 0.01."
        ]
        if ablations.get("note"):
            paragraphs.append(ablations["note"])
        ablation_methods = sample["ablations"]
        out.append(
            Section(
                "Ablations (Tables 5 and 6)",
                paragraphs=paragraphs,
                tables=[
                    Table(["Variant", "Pref. Gain (%)", "Δ (%)", "p (Wilcoxon)", "Pairs"], rows),
                    method_table(
                        metrics["overall"], [ablations["reference"], *ablation_methods], "All metrics"
                    ),
                ],
            )
        )

    unusable = report["unusable"]
    skipped = report["skipped"]
    problems = Section(
        "Unusable judgments and skipped input",
        paragraphs=[
            f"{unusable['total']} judgment(s) unusable"
            + (
                ": " + ", ".join(f"{k} {v}" for k, v in sorted(unusable["by_kind"].items()))
                if unusable["total"]
                else ""
            )
            + f"; {skipped['total']} input record(s) skipped."
        ],
    )
    if unusable["total"]:
        problems.tables.append(
            Table(
                ["Kind", "Reason", "Unit", "Method", "Answer"],
                [
                    [e["kind"], e["reason"], e["unit"], e["method"], e["answer"]]
                    for e in unusable["examples"][:20]
                ],
                caption="Unusable judgments (first examples); by reason: "
                + ", ".join(f"{k} {v}" for k, v in sorted(unusable["by_reason"].items())),
            )
        )
    if skipped["total"]:
        where = [
            [
                e["reason"],
                f"{e['source']}:{e['line']}" if e["line"] else (e["source"] or e["record_id"]),
                e["detail"],
            ]
            for e in skipped["examples"][:30]
        ]
        problems.tables.append(
            Table(
                ["Reason", "Where", "Detail"],
                where,
                caption="Skipped input by reason: "
                + ", ".join(f"{k} {v}" for k, v in sorted(skipped["by_reason"].items())),
            )
        )
    out.append(problems)
    return out


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"
