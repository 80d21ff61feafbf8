"""The debiased protocol's slot-prior correction (PriDe: Zheng et al., 2024, "Large Language Models Are Not
Robust Multiple Choice Selectors").

Model: the judge's probability of answering slot j is its prior for the slot times its preference for the
description shown there, normalised: P_obs(j | order) ∝ prior(j) · P(d_order(j)). Over balanced orders
every description sits in every slot once, so the mean log-probability of slot j across the orders is
log prior(j) plus a term that is the same for every slot; the softmax of the per-slot means is therefore
the prior, and is estimated across all readers' answers. Each answer is then divided by the prior and
renormalised, which leaves the judge's preference between descriptions. With capped (partly balanced)
orders the same estimator relies on the shuffles differing between readers.

Only answers read from log-probabilities are corrected and used for the estimate: a parsed answer is a
one-hot choice, which no division can rescale (balanced orders alone control position there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_FLOOR = 1e-12


@dataclass(frozen=True)
class SlotPrior:
    """The judge's prior over answer slots (A, B, ...) for questions with ``len(probabilities)`` slots."""

    probabilities: tuple[float, ...]
    # Answers the estimate was made from.
    observations: int

    @property
    def slots(self) -> int:
        return len(self.probabilities)

    def to_dict(self) -> dict[str, object]:
        return {
            "slots": self.slots,
            "probabilities": [round(p, 6) for p in self.probabilities],
            "observations": self.observations,
        }


def estimate_prior(distributions: Sequence[Sequence[float]]) -> SlotPrior | None:
    """PriDe's estimate from answer distributions over the same number of slots; None without any."""
    if not distributions:
        return None
    widths = {len(d) for d in distributions}
    if len(widths) != 1:
        raise ValueError(f"answer distributions over different slot counts: {sorted(widths)}")
    logs = np.log(np.clip(np.asarray(distributions, dtype=np.float64), _FLOOR, 1.0)).mean(axis=0)
    weights = np.exp(logs - logs.max())
    prior = weights / weights.sum()
    return SlotPrior(tuple(float(p) for p in prior), len(distributions))


def correct(probabilities: Sequence[float], prior: SlotPrior | None) -> tuple[float, ...]:
    """P(slot) divided by the slot prior and renormalised; unchanged without a prior (or a shape mismatch)."""
    if prior is None or prior.slots != len(probabilities):
        return tuple(probabilities)
    weights = np.asarray(probabilities, dtype=np.float64) / np.clip(
        np.asarray(prior.probabilities, dtype=np.float64), _FLOOR, None
    )
    total = float(weights.sum())
    if total <= 0.0:
        return tuple(probabilities)
    return tuple(float(w) for w in weights / total)


@dataclass
class SlotPriors:
    """The priors a set of debiased judgments was corrected with (None: nothing to estimate from)."""

    # number of candidates in the ranking -> prior over its slots
    ranking: dict[int, SlotPrior | None] = field(default_factory=dict)
    pairwise: SlotPrior | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranking": {str(n): (p.to_dict() if p else None) for n, p in sorted(self.ranking.items())},
            "pairwise": self.pairwise.to_dict() if self.pairwise else None,
        }
