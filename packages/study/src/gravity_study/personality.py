"""A participant's Big Five from their own Mini-IPIP answers (paper D.4), scored by the profiler's code.

Each answer becomes a certain choice over 1..5 and goes through ``gravity_profiler.personality.score_ipip``
(reverse-keyed items reversed as 6 - r, a trait's score the mean of its four items rescaled to 0..1) and
``trait_scores`` (HIGH at or above the profiler's ``trait_threshold``), so a participant's levels mean exactly
what an inferred reader's levels mean.
"""

from __future__ import annotations

from collections.abc import Mapping

from gravity.v1 import profile_pb2
from gravity_core.llm import ChoiceScores
from gravity_profiler.personality import OCEAN, score_ipip, trait_scores
from gravity_profiler.prompts import IPIP_CHOICES
from gravity_study.instruments import ipip_items

ESTIMATOR = "mini-ipip-self-report"


def _certain(answer: int) -> ChoiceScores:
    return ChoiceScores(
        IPIP_CHOICES,
        tuple(1.0 if int(c) == answer else 0.0 for c in IPIP_CHOICES),
        "parsed",
        raw_text=str(answer),
    )


def big_five(answers: Mapping[str, int], threshold: float) -> profile_pb2.Personality:
    """Trait scores and levels in OCEAN order; every one of the 20 items must be answered 1..5."""
    items = ipip_items()
    missing = [i.id for i in items if answers.get(i.id) not in (1, 2, 3, 4, 5)]
    if missing:
        raise ValueError(f"Mini-IPIP items without an answer 1-5: {', '.join(missing)}")
    per_trait = {t: sum(1 for i in items if i.trait == t) for t in OCEAN}
    # every item is answered, so every one must count: the minimum is all of a trait's items
    readings, unusable = score_ipip(
        items, [_certain(int(answers[i.id])) for i in items], min_readable=min(per_trait.values())
    )
    assert unusable == 0
    return profile_pb2.Personality(traits=trait_scores(readings, threshold), estimator=ESTIMATOR)
