"""The generation methods the judge knows: the paper's baselines, GRAVITY, and its ablation variants.

Names, Table 2 order and display names come from :mod:`gravity_core.names`; this module adds how the judge
treats each (ranked with the original, or compared with GRAVITY as an ablation). Anything else in
generations.jsonl is an unknown method: counted and skipped, unless configured in ``judge.extra_methods``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gravity_core import names
from gravity_core.names import ORIGINAL
from gravity_core.names import display_name as display_name  # Table 2 / Table 5 names, re-exported

# Table 2 order.
MAIN_METHODS = names.TABLE2

# The original, a Table 2 method, or a GRAVITY variant (GRAVITY (SFT), gravity-no-*).
Kind = names.Role


def kind_of(method: str, extra: Iterable[str] = ()) -> Kind | None:
    """What ``method`` is, or None when the judge does not know it (an extra method counts as main)."""
    if method != ORIGINAL and method in set(extra):
        return "main"
    return names.role_of(method)


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
        if m == ORIGINAL
        or kind_of(m, extra) == "main"
        or (include_ablations and kind_of(m, extra) == "ablation")
    ]
