"""The judge's two protocols, and what each one's numbers mean.

paper     §4.1 and appendix D.3: one ranking of every method's description per (reader, book), shown in
          one seeded shuffled order; top-1 win rate is how often a method is ranked first, preference
          gain how often it is ranked above the original in that same ranking, interestingness the D.3
          1-5 answer itself. These are the numbers comparable with the paper's Table 2.
debiased  the same questions made to remove the judge's position bias: the top pick is asked in balanced
          orders (every description in every slot equally often) and each method is compared with the
          original as A/B and B/A; the judge's prior over slots is estimated from those answers and divided
          out (PriDe), then the answers are averaged. Interestingness is the expected 1-5 score.

When both run, the debiased protocol is the primary one: ``report.json``'s ``metrics`` and ``ablations``
are its numbers (the paired Wilcoxon tests need its per-unit probabilities), and every protocol's numbers
are in ``metrics_by_protocol``.
"""

from __future__ import annotations

PAPER = "paper"
DEBIASED = "debiased"
ALL = (PAPER, DEBIASED)

DESCRIPTIONS = {
    PAPER: (
        "paper: §4.1/D.3 as written — one ranking of all descriptions per (reader, book) in one seeded random "
        "order; top-1 = ranked first, preference gain = ranked above the original in that ranking, "
        "interestingness = the 1–5 answer. Comparable with the paper's Table 2."
    ),
    DEBIASED: (
        "debiased: the top pick asked in balanced orders and each method against the original in both A/B "
        "orders, with the judge's slot prior estimated from those answers and divided out (PriDe); "
        "interestingness = expected 1–5 score. Not the paper's protocol: it measures the same preferences "
        "with the judge's position bias removed, so its numbers are not comparable with Table 2."
    ),
}


def selected(choice: str) -> list[str]:
    """The protocols a ``judge.protocol`` value runs, in report order."""
    return list(ALL) if choice == "both" else [choice]


def primary(protocols: list[str]) -> str:
    return DEBIASED if DEBIASED in protocols else protocols[0]
