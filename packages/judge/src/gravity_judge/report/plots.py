"""Figures with matplotlib's Agg canvas (no display, no global pyplot state, safe in server threads):
per-country grouped bars of preference gain (Figure 2), per-genre-cluster bars coloured fiction /
non-fiction (Figure 3), and top-1 win rates with each protocol side by side. Country, genre and method
names come from input files: '$' is escaped so they are never read as mathtext."""

from __future__ import annotations

import io
from typing import Any

from gravity_core.names import GRAVITY
from gravity_judge.methods import ORIGINAL


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _errors(estimates: list[dict[str, Any] | None]) -> tuple[list[float], list[list[float]]]:
    values, low, high = [], [], []
    for e in estimates:
        v = e.get("value") if e else None
        values.append(v if v is not None else 0.0)
        lo = e.get("ci_low") if e else None
        hi = e.get("ci_high") if e else None
        low.append(max(0.0, v - lo) if v is not None and lo is not None else 0.0)
        high.append(max(0.0, hi - v) if v is not None and hi is not None else 0.0)
    return values, [low, high]


def _label(text: str) -> str:
    return str(text).replace("$", r"\$")


def _main(report: dict[str, Any]) -> list[str]:
    ablations = set(report["sample"]["ablations"])
    return [k for k in report["sample"]["methods"] if k not in ablations and k != ORIGINAL]


def country_figure(report: dict[str, Any]) -> bytes | None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    countries = list(report["metrics"]["by_country"])
    methods = _main(report)
    if not countries or not methods:
        return None
    by_country = report["metrics"]["by_country"]
    if all(
        by_country[c]["methods"][k]["preference_gain"]["value"] is None for c in countries for k in methods
    ):
        return None
    names = report["sample"]["display_names"]
    fig = Figure(figsize=(max(6.0, 1.6 * len(countries) + 2), 4.2))
    ax = fig.subplots()
    width = 0.8 / len(methods)
    cmap = colormaps["tab10"]
    for k, method in enumerate(methods):
        per = [report["metrics"]["by_country"][c]["methods"][method]["preference_gain"] for c in countries]
        values, err = _errors(per)
        xs = [i + (k - (len(methods) - 1) / 2) * width for i in range(len(countries))]
        ax.bar(xs, values, width, yerr=err, capsize=2, label=_label(names[method]), color=cmap(k % 10))
    ax.set_xticks(range(len(countries)))
    ax.set_xticklabels([_label(c) for c in countries])
    ax.set_ylabel("Preference gain (%)")
    ax.set_ylim(0, 105)
    ax.axhline(50, color="#888", linewidth=0.8, linestyle="--")
    ax.set_title("Preference gain over the original by country")
    ax.legend(fontsize=7, ncols=min(4, len(methods)), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    return _png(fig)


def focus_method(report: dict[str, Any], preferred: str) -> str | None:
    methods = _main(report) + list(report["sample"]["ablations"])
    if preferred in methods:
        return preferred
    overall = report["metrics"]["overall"]
    scored = [
        (overall[k]["preference_gain"]["value"], k)
        for k in methods
        if overall[k]["preference_gain"]["value"] is not None
    ]
    return max(scored)[1] if scored else None


def genre_figure(report: dict[str, Any], method: str | None) -> bytes | None:
    from matplotlib.figure import Figure

    from gravity_core import genres

    clusters = list(report["metrics"]["by_genre_cluster"])
    if not clusters or method is None:
        return None
    per = [report["metrics"]["by_genre_cluster"][g]["methods"][method]["preference_gain"] for g in clusters]
    if all(e["value"] is None for e in per):
        return None
    values, err = _errors(per)
    colours = {"fiction": "#4c72b0", "non-fiction": "#dd8452", "unknown": "#999999"}
    fig = Figure(figsize=(max(6.0, 0.9 * len(clusters) + 2), 4.4))
    ax = fig.subplots()
    ax.bar(
        range(len(clusters)),
        values,
        0.6,
        yerr=err,
        capsize=3,
        color=[colours[genres.side_of(c)] for c in clusters],
    )
    ax.set_xticks(range(len(clusters)))
    ax.set_xticklabels([_label(c) for c in clusters], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Preference gain (%)")
    ax.set_ylim(0, 105)
    ax.axhline(50, color="#888", linewidth=0.8, linestyle="--")
    primary = report["protocols"]["primary"]
    ax.set_title(
        f"Preference gain by genre cluster ({primary}): {_label(report['sample']['display_names'][method])}"
        " — blue fiction, orange non-fiction"
    )
    return _png(fig)


def win_rate_figure(report: dict[str, Any]) -> bytes | None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    protocols = report["protocols"]["run"]
    by = report["metrics_by_protocol"]
    ranked = [k for k in report["sample"]["ranked_methods"] if k in by[protocols[0]]["overall"]]
    estimates = {p: [by[p]["overall"][k]["top1_win_rate"] for k in ranked] for p in protocols}
    if not ranked or all(e["value"] is None for p in protocols for e in estimates[p]):
        return None
    names = [_label(report["sample"]["display_names"][k]) for k in ranked]
    fig = Figure(figsize=(6.5, 0.45 * len(ranked) + 1.5))
    ax = fig.subplots()
    height = 0.8 / len(protocols)
    cmap = colormaps["tab10"]
    for j, p in enumerate(protocols):
        values, err = _errors(estimates[p])
        ys = [i + (j - (len(protocols) - 1) / 2) * height for i in range(len(ranked))]
        ax.barh(ys, values, height, xerr=err, capsize=3, color=cmap(j + 2), label=p)
    ax.set_yticks(range(len(ranked)))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("Top-1 win rate (%)")
    ax.set_xlim(0, 100)
    ax.set_title("Top-1 win rate (all methods ranked together)")
    if len(protocols) > 1:
        ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def render_figures(report: dict[str, Any], focus: str = GRAVITY) -> dict[str, tuple[str, bytes]]:
    """name -> (caption, PNG) for every figure the data supports."""
    out: dict[str, tuple[str, bytes]] = {}
    png = win_rate_figure(report)
    if png:
        out["win_rate"] = ("Top-1 win rate per method and protocol with bootstrap intervals.", png)
    png = country_figure(report)
    if png:
        out["preference_by_country"] = (
            "Preference gain (%) over the original description per country (cf. paper Figure 2).",
            png,
        )
    method = focus_method(report, focus)
    png = genre_figure(report, method)
    if png and method:
        name = report["sample"]["display_names"][method]
        out["preference_by_genre"] = (
            f"Preference gain (%) of {name} per genre cluster, fiction and non-fiction (cf. paper Figure 3).",
            png,
        )
    return out
