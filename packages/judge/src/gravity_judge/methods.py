"""The generation methods the judge knows: the paper's baselines, GRAVITY, and its ablation variants.

Method names are the generator's (and the dataset names adapters were trained on). Anything else in
generations.jsonl is an unknown method: counted and skipped, unless configured in ``judge.extra_methods``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

ORIGINAL = "original"
# Table 2 order.
MAIN_METHODS = (
    "base-rewrite",
    "demo-based",
    "user-summary",
    "lamp",
    "tri-agent",
    "user-sft",
    "pref-align",
    "gravity",
)
DISPLAY = {
    ORIGINAL: "Original",
    "base-rewrite": "BaseRewrite",
    "demo-based": "DemoBased",
    "user-summary": "UserSummary",
    "lamp": "LaMP",
    "tri-agent": "TriAgent",
    "user-sft": "UserSFT",
    "pref-align": "PrefAlign",
    "gravity": "GRAVITY",
    "gravity-sft": "GRAVITY (SFT)",
}
# Table 5 feature names for the facets pairgen can drop.
_FACET_DISPLAY = {
    "interests": "User Interests",
    "category": "Category",
    "summary": "Summary",
    "values": "Values & Beliefs",
    "personality": "Personality",
}
_ABLATION = re.compile(r"^gravity-no-[a-z0-9][a-z0-9-]*$")

Kind = Literal["original", "main", "ablation"]


def kind_of(method: str, extra: Iterable[str] = ()) -> Kind | None:
    """What ``method`` is, or None when the judge does not know it."""
    if method == ORIGINAL:
        return "original"
    if method in MAIN_METHODS or method in set(extra):
        return "main"
    if method == "gravity-sft" or _ABLATION.match(method):
        return "ablation"
    return None


def display_name(method: str) -> str:
    if method in DISPLAY:
        return DISPLAY[method]
    if method.startswith("gravity-no-"):
        facet = method[len("gravity-no-") :]
        return f"GRAVITY − {_FACET_DISPLAY.get(facet, facet.replace('-', ' ').title())}"
    return method


def ordered(methods: Iterable[str]) -> list[str]:
    """Original first, then the paper's order, then extra methods, then ablations (alphabetical)."""
    rank = {m: i for i, m in enumerate((ORIGINAL, *MAIN_METHODS))}

    def key(m: str) -> tuple[int, int, str]:
        if m in rank:
            return (0, rank[m], m)
        return (2 if kind_of(m) == "ablation" else 1, 0, m)

    return sorted(set(methods), key=key)


def ranked_methods(methods: Sequence[str], extra: Iterable[str], include_ablations: bool) -> list[str]:
    """The methods that enter the top-1 ranking (the original always does)."""
    extra = list(extra)
    return [
        m
        for m in ordered(methods)
        if kind_of(m, extra) in ("original", "main")
        or (include_ablations and kind_of(m, extra) == "ablation")
    ]
