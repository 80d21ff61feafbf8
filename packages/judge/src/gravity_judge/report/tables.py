"""The report's sections and tables, built once from report.json and rendered as Markdown or HTML.

Every text here is plain text: the renderers escape it (descriptions, method names, countries and genres
come from input files and must not be able to inject markup into either format).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gravity_judge import protocols as proto
from gravity_judge.methods import ORIGINAL

DASH = "–"
UNKNOWN = "unknown"


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


_NUMERIC = re.compile(r"^[\d\s.,\[\]%*–−+-]*$")


def is_numeric(text: str) -> bool:
    """Whether a cell holds a number (with interval, stars or a dash): right-aligned, prose is not."""
    return bool(_NUMERIC.match(text))


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def _known(value: Any) -> str:
    return UNKNOWN if value is None else str(value)


TABLE2_HEADERS = ["Method", "Top-1 Win (%)", "Pref. Gain (%)", "Int. Score", "Text Similarity", "Units"]


def method_table(
    by_protocol: dict[str, dict[str, Any]], protocols: list[str], methods: list[str], caption: str = ""
) -> Table:
    """Table 2 with each protocol's top-1, preference gain and interestingness side by side."""
    headers = ["Method"]
    for name in ("Top-1 Win (%)", "Pref. Gain (%)", "Int. Score"):
        headers += [f"{name} ({p})" for p in protocols]
    headers += ["Text Similarity", "Units"]
    rows = []
    for method in methods:
        entries = [by_protocol[p].get(method) for p in protocols]
        if any(e is None for e in entries):
            continue
        row = [entries[0]["display"]]  # type: ignore[index]
        for metric, digits in (("top1_win_rate", 1), ("preference_gain", 1), ("interestingness", 2)):
            row += [fmt(e[metric], digits) for e in entries]  # type: ignore[index]
        n = max(
            (x or {}).get("n", 0)
            for e in entries
            for x in (e["top1_win_rate"], e["preference_gain"], e["interestingness"], e["similarity"])  # type: ignore[index]
        )
        row += [fmt(entries[0]["similarity"]), str(n)]  # type: ignore[index]
        rows.append(row)
    return Table(headers, rows, caption)


def _main_methods(report: dict[str, Any]) -> list[str]:
    ablations = set(report["sample"]["ablations"])
    return [k for k in report["sample"]["methods"] if k not in ablations]


def _comparability(protocols: list[str]) -> str:
    if protocols == [proto.PAPER]:
        return (
            "These numbers follow the paper's protocol (§4.1, D.3) and are comparable with its Table 2. "
            "The judge's position bias is not removed; see Judge position bias."
        )
    if protocols == [proto.DEBIASED]:
        return (
            "These numbers come from the debiased protocol (balanced orders, slot prior divided out); they "
            "measure the same preferences as the paper without the judge's position bias and are not "
            "comparable with the paper's Table 2 (run the paper protocol for that)."
        )
    return (
        "Columns marked (paper) follow the paper's protocol (§4.1, D.3: one ranking per reader and book, "
        "preference gain read from that ranking, the 1–5 answer) and are the ones comparable with the paper's "
        "Table 2. Columns marked (debiased) ask the same judge in balanced orders with its slot prior divided "
        "out and preference gain from A/B questions in both orders: the same preferences with position bias "
        "removed, not comparable with Table 2. Text similarity is the same in both."
    )


def _setup(report: dict[str, Any]) -> Section:
    judge, sample, protocols = report["judge"], report["sample"], report["protocols"]
    conf = round(judge["confidence"] * 100)
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(judge["answers"].items())) or "none"
    orders = judge["ranking_orders"]
    paragraphs = [
        f"Judge: {judge['model']} ({judge['backend']} backend, answer mode {judge['answer_mode']}; answers "
        f"read by {answers}); seed {judge['seed']}; {judge['bootstrap_samples']} bootstrap resamples of "
        f"(user, book) units, {conf}% intervals in brackets.",
        "Protocols: "
        + " ".join(protocols["descriptions"][p] for p in protocols["run"])
        + (
            f" The debiased top pick is asked in {'one order per description (fully balanced)' if orders == 0 else f'at most {orders} evenly spaced rotations (partly balanced when fewer than the descriptions)'}."
            if proto.DEBIASED in protocols["run"]
            else ""
        ),
        f"Sample: {sample['users']} users, {sample['books']} books, {sample['units']} (user, book) units, "
        f"{len(sample['methods'])} methods including the original. "
        f"Rows read {report['inputs']['rows_read']}, used {report['inputs']['rows_used']}, "
        f"skipped {report['skipped']['total']}, excluded by --methods {report['inputs']['rows_excluded']}; "
        f"{report['inputs']['descriptions_truncated']} description(s) cut to "
        f"{judge['max_description_chars']} characters.",
    ]
    return Section("Setup", paragraphs=paragraphs)


def _agreement(report: dict[str, Any]) -> Section | None:
    agreement = report.get("agreement")
    if not agreement:
        return None
    return Section(
        "Protocol agreement",
        paragraphs=[
            "Per (user, book) unit judged under both protocols: whether the paper ranking's first place is the "
            "debiased winner, and Kendall's tau between the paper ranking and the debiased ranking (by corrected "
            "first-place probability; 1 = same order, 0 = unrelated, −1 = reversed)."
        ],
        tables=[
            Table(
                ["Measure", "Value", "Units"],
                [
                    ["Same top-1 pick (%)", fmt(agreement["same_top1"]), str(agreement["units"])],
                    ["Kendall tau (mean)", fmt(agreement["kendall_tau"], 2), str(agreement["units"])],
                ],
            )
        ],
    )


def _prior_text(prior: dict[str, Any] | None) -> str:
    if not prior:
        return "not estimated (no answers with probabilities)"
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return ", ".join(f"{letters[i]} {p * 100:.1f}%" for i, p in enumerate(prior["probabilities"])) + (
        f" (from {prior['observations']} answers)"
    )


def _position_bias(report: dict[str, Any]) -> Section:
    bias = report["position_bias"]
    rows: list[list[str]] = []
    paragraphs = [
        "How far the judge's answers follow where a description is shown rather than what it says. Top pick in "
        "slot A: the description shown first was picked; most-picked slot: the pick landed on the slot picked "
        "most often overall (named in brackets); chance is 1 / number of descriptions. A pair is "
        "position-biased when the same slot (A or B) won in both orders. Before / after: the debiased "
        "protocol's answers as given and with the estimated slot prior divided out."
    ]
    if proto.PAPER in bias:
        p = bias[proto.PAPER]
        top = p["top_pick"]
        chance = _pct(top["chance_rate"])
        modal = ", ".join(top["most_picked_slot"].values()) or DASH
        rows += [
            [
                "Paper ranking: first place in slot A",
                fmt(top["first_slot_rate"]),
                DASH,
                chance,
                str(top["picks"]),
            ],
            [
                f"Paper ranking: first place in the most-picked slot ({modal})",
                fmt(top["most_picked_slot_rate"]),
                DASH,
                chance,
                str(top["picks"]),
            ],
        ]
        paragraphs.append(
            f"Paper protocol: {p['rankings']} ranking(s) asked, {p['unusable_rankings']} could not be read as a "
            "complete ranking (counted as unusable, never guessed); read by "
            + (", ".join(f"{k} {v}" for k, v in sorted(p["read_by"].items())) or "none")
            + ". It has no correction: each ranking is one order."
        )
    if proto.DEBIASED in bias:
        d = bias[proto.DEBIASED]
        rk, pw = d["ranking"], d["pairwise"]
        before, after = rk["before"], rk["after"]
        chance = _pct(before["chance_rate"])
        modal_b = ", ".join(before["most_picked_slot"].values()) or DASH
        modal_a = ", ".join(after["most_picked_slot"].values()) or DASH
        rows += [
            [
                "Debiased top pick: in slot A",
                fmt(before["first_slot_rate"]),
                fmt(after["first_slot_rate"]),
                chance,
                str(before["picks"]),
            ],
            [
                f"Debiased top pick: in the most-picked slot ({modal_b} / {modal_a})",
                fmt(before["most_picked_slot_rate"]),
                fmt(after["most_picked_slot_rate"]),
                chance,
                str(before["picks"]),
            ],
            [
                "Pairs: same slot won in both orders",
                fmt(pw["position_bias_rate"]["before"]),
                fmt(pw["position_bias_rate"]["after"]),
                DASH,
                str(pw["pairs"]),
            ],
            [
                "Pair answers: slot A picked",
                fmt(pw["first_slot_rate"]["before"]),
                fmt(pw["first_slot_rate"]["after"]),
                _pct(pw["first_slot_rate"]["chance_rate"]),
                str(2 * pw["pairs"]),
            ],
        ]
        priors = rk.get("prior") or {}
        prior_lines = "; ".join(f"{n} slots: {_prior_text(p)}" for n, p in priors.items()) or "none"
        paragraphs.append(
            f"Debiased protocol: {rk['units']} unit(s) ranked in up to {rk['orders_per_unit']} orders, "
            f"{rk['balanced_units']} of them fully balanced (every description in every slot once); order "
            f"agreement after the correction {fmt(rk['order_agreement'])}%; {pw['pairs']} pair(s), {pw['ties']} "
            f"tie(s), order agreement {fmt(pw['order_agreement'])}%. Estimated slot prior of the top-pick "
            f"question — {prior_lines}. Of the A/B question — {_prior_text(pw.get('prior'))}."
        )
    return Section(
        "Judge position bias",
        paragraphs=paragraphs,
        tables=[Table(["Measure", "Before correction (%)", "After correction (%)", "Chance (%)", "n"], rows)],
    )


_SIDE_NAMES = {
    "fiction": "All fiction",
    "non-fiction": "All non-fiction",
    "unknown": "Fiction or not unknown",
}


def _gain_table(
    groups: dict[str, Any], methods: list[str], names: dict[str, str], first: str, caption: str
) -> Table:
    rows = [
        [group, str(v["units"])] + [fmt(v["methods"][k]["preference_gain"], ci=False) for k in methods]
        for group, v in groups.items()
    ]
    return Table([first, "Units", *[names[k] for k in methods]], rows, caption)


def _genres(report: dict[str, Any], protocols: list[str], main: list[str]) -> list[Section]:
    names = report["sample"]["display_names"]
    gain_methods = [k for k in main if k != ORIGINAL]
    by = report["metrics_by_protocol"]
    clusters = Section(
        "Preference gain (%) by genre cluster, fiction and non-fiction (Figure 3)",
        paragraphs=[
            "The paper's book categories (Figure 4's list, grouped into fiction and non-fiction as in Figure 3), "
            "mapped from each book's Amazon category by gravity_core.genres; a category the mapping does not "
            "know is Other."
        ],
        figures=["preference_by_genre"],
    )
    amazon = Section("Preference gain (%) by Amazon category (second level under Books)")
    for p in protocols:
        groups = dict(by[p]["by_genre_cluster"])
        groups.update({_SIDE_NAMES.get(k, k): v for k, v in by[p]["by_fiction"].items()})
        clusters.tables.append(_gain_table(groups, gain_methods, names, "Genre cluster", f"{p} protocol"))
        amazon.tables.append(
            _gain_table(by[p]["by_genre_group"], gain_methods, names, "Amazon category", f"{p} protocol")
        )
    return [clusters, amazon]


def _ablations(report: dict[str, Any], protocols: list[str]) -> Section | None:
    names = report["sample"]["display_names"]
    by = report["ablations_by_protocol"]
    if not any(by[p]["tests"] or by[p].get("note") for p in protocols):
        return None
    section = Section(
        "Ablations (Tables 5 and 6)",
        paragraphs=[
            "Δ: the variant's preference gain minus the reference's on the units both were judged on. Paired "
            "Wilcoxon signed-rank test: * p < 0.05, ** p < 0.01 — on each unit's probability of preferring the "
            "output over the original (debiased) or on the ranked-above-the-original outcome (paper). The "
            f"primary protocol for ablations is {report['protocols']['primary']}."
        ],
    )
    for p in protocols:
        ablations = by[p]
        if ablations.get("note"):
            section.paragraphs.append(f"{p}: {ablations['note']}")
        if not ablations["tests"]:
            continue
        rows = [
            [
                f"{names.get(ablations['reference'], ablations['reference'])} (reference)",
                _pct(ablations["tests"][0]["reference_gain"]),
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
        section.tables.append(
            Table(["Variant", "Pref. Gain (%)", "Δ (%)", "p (Wilcoxon)", "Pairs"], rows, f"{p} protocol")
        )
    ablation_methods = report["sample"]["ablations"]
    reference = report["ablations"]["reference"]
    by_metrics = report["metrics_by_protocol"]
    section.tables.append(
        method_table(
            {p: by_metrics[p]["overall"] for p in protocols},
            protocols,
            [reference, *ablation_methods],
            "All metrics",
        )
    )
    return section


def _evidence(report: dict[str, Any]) -> Section:
    ev = report["profile_evidence"]
    if not ev["readers"]:
        return Section("Profile evidence", paragraphs=["No reader was judged."])
    parts = [f"{ev['readers']} reader(s) judged"]
    read = ev["reviews_read"]
    if read:
        parts.append(
            f"reviews read per reader: min {read['min']}, median {read['median']}, max {read['max']} "
            f"({read['sum']} of {read['of_total']} reviews in their histories)"
        )
    for key, label in (
        ("unreadable_stances", "unreadable stances"),
        ("unreadable_items", "unreadable Mini-IPIP items"),
    ):
        v = ev[key]
        parts.append(
            f"{label}: {UNKNOWN}"
            if v is None
            else f"{label}: {v['sum']} over {v['readers_affected']} of {v['readers']} reader(s)"
        )
    t = ev["unknown_traits"]
    parts.append(f"traits of unknown level: {t['sum']} over {t['readers_affected']} reader(s)")
    if ev["without_evidence"]:
        parts.append(
            f"{ev['without_evidence']} reader(s) without recorded evidence (profiles built before it was "
            "recorded, or personas given in the request): their counts are unknown, not 0"
        )
    rows = [
        [
            r["user_id"],
            _known(r["reviews_read"]),
            _known(r["reviews_total"]),
            _known(r["chunks"]),
            _known(r["unreadable_stances"]),
            _known(r["unreadable_items"]),
            str(r["unknown_traits"]),
        ]
        for r in ev["per_reader"][:30]
    ]
    return Section(
        "Profile evidence",
        paragraphs=["; ".join(parts) + "."],
        tables=[
            Table(
                [
                    "Reader",
                    "Reviews read",
                    "Reviews total",
                    "Chunks",
                    "Unreadable stances",
                    "Unreadable items",
                    "Unknown traits",
                ],
                rows,
                caption="Per reader (first 30)" if len(ev["per_reader"]) > 30 else "",
            )
        ],
    )


def _examples(report: dict[str, Any]) -> Section | None:
    examples = report.get("examples") or []
    if not examples:
        return None
    section = Section(
        "What was judged (examples)",
        paragraphs=[
            "One book for each of a few readers, with every description the judge read (cut to 600 characters "
            "here). Every judgment — presentation order, raw answer or probabilities, parse status — is in "
            f"{report['judgments']['file']} ({report['judgments']['records']} records)."
        ],
    )
    for ex in examples:
        section.tables.append(
            Table(
                [
                    "Method",
                    "Description",
                    "Paper rank",
                    "Debiased P(first) (%)",
                    "Debiased P(over original) (%)",
                ],
                [
                    [
                        d["display"],
                        d["text"],
                        _known(d["paper_rank"]) if d["paper_rank"] is not None else DASH,
                        _pct(d["debiased_first_place"]),
                        _pct(d["debiased_preferred_over_original"]),
                    ]
                    for d in ex["descriptions"]
                ],
                caption=f"Reader {ex['user_id']}: {ex['persona']} Book: {ex['book_title']} "
                f"({ex['parent_asin']}, {ex['genre_cluster']}).",
            )
        )
    return section


def _problems(report: dict[str, Any]) -> Section:
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
                caption="Unusable judgments (first examples; full answers in the judgments file); by reason: "
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
    return problems


def sections(report: dict[str, Any]) -> list[Section]:
    protocols = report["protocols"]["run"]
    by = report["metrics_by_protocol"]
    main = _main_methods(report)
    out: list[Section] = [_setup(report)]
    out.append(
        Section(
            "Personalization metrics (Table 2)",
            paragraphs=[_comparability(protocols)],
            tables=[method_table({p: by[p]["overall"] for p in protocols}, protocols, main)],
            figures=["win_rate"],
        )
    )
    agreement = _agreement(report)
    if agreement is not None:
        out.append(agreement)
    out.append(_position_bias(report))
    out.append(
        Section(
            "By country (Tables 14–17)",
            tables=[
                method_table(
                    {p: by[p]["by_country"][country]["methods"] for p in protocols},
                    protocols,
                    main,
                    caption=f"{country} ({v['units']} units)",
                )
                for country, v in by[protocols[0]]["by_country"].items()
            ],
            figures=["preference_by_country"],
        )
    )
    out += _genres(report, protocols, main)
    ablations = _ablations(report, protocols)
    if ablations is not None:
        out.append(ablations)
    out.append(_evidence(report))
    examples = _examples(report)
    if examples is not None:
        out.append(examples)
    out.append(_problems(report))
    return out
