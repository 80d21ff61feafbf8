"""Demographics (paper §3.2): given values pass through; missing ones are estimated by the annotator LLM.

Estimation is a constrained choice over the allowed values (age group young / middle-aged / senior,
gender female / male, country from a configurable candidate list); the chosen value's probability is its
confidence. The paper used DeBERTa classifiers for age and gender; a constrained choice by the annotator
covers country too and needs no extra model. Only missing fields are estimated, from every chunk of the
history with the chunks' answers pooled (:mod:`gravity_profiler.pooling`); a field no chunk answered
readably is left unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gravity.v1 import common_pb2
from gravity_core.amazon import AGE_GROUPS, DemographicsRecord
from gravity_core.llm import ChoiceScores, LLMClient
from gravity_profiler import prompts
from gravity_profiler.history import ReviewHistory
from gravity_profiler.pooling import pool

GENDERS = ("female", "male")


@dataclass
class DemographicsResult:
    proto: common_pb2.Demographics
    estimated: list[str]
    unusable: list[str]

    @property
    def text(self) -> str:
        d = self.proto
        return prompts.demographics_text(d.age_group.value, d.gender.value, d.country.value)


def _given(value: str) -> common_pb2.DemographicField:
    return common_pb2.DemographicField(value=value, provenance=common_pb2.PROVENANCE_GIVEN, confidence=1.0)


def resolve_demographics(
    given: DemographicsRecord | None,
    llm: LLMClient,
    history: ReviewHistory,
    countries: Sequence[str],
) -> DemographicsResult:
    """Given fields as GIVEN; each missing one estimated (ESTIMATED, probability as confidence)."""
    given = given or DemographicsRecord(user_id="")
    out = common_pb2.Demographics(age=given.age or 0)
    options = {"age_group": AGE_GROUPS, "gender": GENDERS, "country": tuple(countries)}
    known = {"age_group": given.age_group, "gender": given.gender, "country": given.country}
    missing = [f for f in ("age_group", "gender", "country") if not known[f]]
    for field in ("age_group", "gender", "country"):
        if known[field]:
            getattr(out, field).CopyFrom(_given(known[field]))
    estimated: list[str] = []
    unusable: list[str] = []
    if missing:
        per_field: dict[str, list[ChoiceScores]] = {f: [] for f in missing}
        # Chunk by chunk, so the fields' consecutive calls share the chunk's encoded prefix.
        for chunk in history.chunks:
            context = [{"role": "user", "content": prompts.demographic_context(chunk)}]
            for field in missing:
                per_field[field] += llm.score_choices_shared_prefix(
                    context, [prompts.demographic_question(field, options[field])], options[field]
                )
        for field in missing:
            scores = pool(per_field[field])
            if scores.best is None:
                # No usable answer: leave the field unknown rather than guess.
                unusable.append(field)
                continue
            estimate = common_pb2.DemographicField(
                value=scores.best, provenance=common_pb2.PROVENANCE_ESTIMATED
            )
            if scores.method == "logprobs":
                estimate.confidence = float(scores.best_probability)
            getattr(out, field).CopyFrom(estimate)
            estimated.append(field)
    return DemographicsResult(out, estimated, unusable)
