"""A participant's answers -> a ``gravity.v1.UserProfile`` like any other reader's (paper §3.2, D.4).

* demographics: given by the participant (provenance GIVEN);
* interests: the three chosen Figure 4 categories, each as the catalog genres it covers (pairgen and the
  generator need catalog genres), the category's share split evenly over them;
* values: the ten self-reported stances plus the 140 the annotator inferred (unreadable ones recorded as
  ``STANCE_UNREADABLE``); the value summary is written by the author LLM with the profiler's "User Value
  Survey" prompt (Table 12) from the participant's own answers first, then the most confident inferences;
* personality: the participant's Mini-IPIP answers scored with the profiler's keying;
* user summary (UserSummary/TriAgent baselines, the judge's persona): the author LLM summarises the survey
  answers, since participants have no review history (a documented deviation).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.catalog import Catalog
from gravity_core.genres import cluster_of
from gravity_core.llm import GenerationParams, LLMClient
from gravity_core.prompts import traits_text
from gravity_core.values import SeedStatement
from gravity_profiler import prompts as profiler_prompts
from gravity_profiler import summaries
from gravity_study.instruments import GENRES_TO_PICK, UNREADABLE, statements
from gravity_study.personality import big_five

SCHEMA_VERSION = 1
STANCE_OF = {
    "agree": profile_pb2.STANCE_SUPPORT,
    "disagree": profile_pb2.STANCE_OPPOSE,
    "neutral": profile_pb2.STANCE_NEUTRAL,
    UNREADABLE: profile_pb2.STANCE_UNREADABLE,
}
USER_SUMMARY_MAX_SENTENCES = 5


@dataclass(frozen=True)
class Answers:
    """Everything a participant answered that goes into their profile."""

    user_id: str
    age_group: str
    gender: str
    country: str
    genres: tuple[str, ...]
    ipip: dict[str, int]
    value_answers: dict[str, str]
    inferred: dict[str, dict[str, object]]


def catalog_genres(catalog: Catalog) -> dict[str, list[tuple[str, str, int]]]:
    """Figure 4 category -> [(genre, genre group, books)] of the catalog, most books first."""
    groups = catalog.genre_groups()
    out: dict[str, list[tuple[str, str, int]]] = {}
    for genre, count in catalog.genres().items():
        group = groups.get(genre, "")
        out.setdefault(cluster_of(genre, group), []).append((genre, group, count))
    for items in out.values():
        items.sort(key=lambda g: (-g[2], g[0]))
    return out


def interests_for(
    categories: Sequence[str], catalog: Catalog, genres_per_category: int = 2
) -> list[profile_pb2.Interest]:
    """The chosen categories as catalog genres (a category without books in the catalog contributes none)."""
    by_category = catalog_genres(catalog)
    out: list[profile_pb2.Interest] = []
    for category in categories:
        genres = by_category.get(category, [])[:genres_per_category]
        for genre, group, _ in genres:
            out.append(
                profile_pb2.Interest(
                    genre=genre, share=1.0 / GENRES_TO_PICK / len(genres), review_count=0, genre_group=group
                )
            )
    return out


def stances(answers: Answers, bank: dict[str, SeedStatement]) -> list[profile_pb2.ValueStance]:
    out = []
    for sid, st in bank.items():
        stance = profile_pb2.ValueStance(
            statement_id=sid, statement=st.text, framework=st.framework, topic=st.topic
        )
        if sid in answers.value_answers:
            stance.stance = STANCE_OF[answers.value_answers[sid]]
            stance.confidence = 1.0
        elif sid in answers.inferred:
            entry = answers.inferred[sid]
            stance.stance = STANCE_OF[str(entry["label"])]
            if entry.get("confidence") is not None and entry["label"] != UNREADABLE:
                stance.confidence = float(entry["confidence"])  # type: ignore[arg-type]
        else:
            continue
        out.append(stance)
    return out


def strongest(answers: Answers, bank: dict[str, SeedStatement], cap: int) -> tuple[list[str], list[str]]:
    """Supported and opposed statements for the value summary: own answers first, then inferences by
    confidence (parsed ones, without a probability, after those with one)."""
    own = [(sid, label, 2.0) for sid, label in answers.value_answers.items()]
    guessed = [
        (sid, str(e["label"]), float(str(e["confidence"])) if e.get("confidence") is not None else 0.0)
        for sid, e in answers.inferred.items()
    ]
    ranked = [x for x in own + sorted(guessed, key=lambda x: -x[2]) if x[1] in ("agree", "disagree")][:cap]
    supported = [bank[sid].text for sid, label, _ in ranked if label == "agree"]
    opposed = [bank[sid].text for sid, label, _ in ranked if label == "disagree"]
    return supported, opposed


def user_summary_prompt(
    answers: Answers, personality: profile_pb2.Personality, bank: dict[str, SeedStatement]
) -> str:
    profile = profile_pb2.UserProfile(personality=personality)
    own = "\n".join(f'- "{bank[sid].text}": {label}' for sid, label in answers.value_answers.items())
    return (
        "Please generate a summary of the user based on their answers to a reading survey.\n"
        f"Age group: {answers.age_group}. Gender: {answers.gender or 'not given'}. Country: {answers.country}.\n"
        f"Favourite book categories: {', '.join(answers.genres)}.\n"
        f"Personality: {traits_text(profile)}.\n"
        f"Their answers to value statements:\n{own}\n"
        f"Now write the summary of the user in 3-{USER_SUMMARY_MAX_SENTENCES} sentences of your own words."
    )


@dataclass
class ProfileDraft:
    answers: Answers
    profile: profile_pb2.UserProfile
    value_prompt: str
    summary_prompt: str
    supported: list[str]
    opposed: list[str]


def draft(
    answers: Answers,
    catalog: Catalog,
    trait_threshold: float,
    max_statements: int,
    max_sentences: int,
    models: dict[str, str],
) -> ProfileDraft:
    """The profile without its two summaries, and the author prompts that will write them."""
    bank = statements()
    personality = big_five(answers.ipip, trait_threshold)
    values = stances(answers, bank)
    profile = profile_pb2.UserProfile(
        user_id=answers.user_id,
        demographics=common_pb2.Demographics(
            age_group=_given(answers.age_group),
            gender=_given(answers.gender),
            country=_given(answers.country),
        ),
        interests=interests_for(answers.genres, catalog),
        values=values,
        personality=personality,
        review_count=0,
        version=SCHEMA_VERSION,
        models=models,
        evidence=profile_pb2.ProfileEvidence(
            unreadable_stances=sum(1 for v in values if v.stance == profile_pb2.STANCE_UNREADABLE)
        ),
    )
    supported, opposed = strongest(answers, bank, max_statements)
    return ProfileDraft(
        answers,
        profile,
        profiler_prompts.value_summary_prompt(supported, opposed, max_sentences),
        user_summary_prompt(answers, personality, bank),
        supported,
        opposed,
    )


def write_summaries(
    drafts: Sequence[ProfileDraft], author: LLMClient, max_tokens: int, max_sentences: int
) -> list[profile_pb2.UserProfile]:
    """One batched author call for every draft's value summary and user summary; fills in the revision."""
    if not drafts:
        return []
    conversations = [[{"role": "user", "content": d.value_prompt}] for d in drafts] + [
        [{"role": "user", "content": d.summary_prompt}] for d in drafts
    ]
    completions = author.chat_batch(conversations, GenerationParams(max_tokens=max_tokens, temperature=0.0))
    n = len(drafts)
    out = []
    for k, d in enumerate(drafts):
        value_c, user_c = completions[k], completions[n + k]
        value_text = summaries.clean_summary(
            value_c.text, max_sentences, cut_off=value_c.finish_reason == "length"
        ) or summaries.fallback_value_summary(d.supported, d.opposed, max_sentences)
        user_text = summaries.clean_summary(
            user_c.text, USER_SUMMARY_MAX_SENTENCES, cut_off=user_c.finish_reason == "length"
        )
        profile = profile_pb2.UserProfile()
        profile.CopyFrom(d.profile)
        profile.value_summary = value_text
        profile.user_summary = user_text
        profile.revision = revision(d.answers, profile.models)
        out.append(profile)
    return out


def revision(answers: Answers, models: object) -> str:
    payload = {
        "schema": SCHEMA_VERSION,
        "answers": answers.__dict__,
        "models": dict(models),  # type: ignore[call-overload]
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()


def _given(value: str) -> common_pb2.DemographicField:
    if not value:
        return common_pb2.DemographicField()
    return common_pb2.DemographicField(value=value, provenance=common_pb2.PROVENANCE_GIVEN, confidence=1.0)


def for_cohort(
    profile: profile_pb2.UserProfile, cohort_id: str, cohort_size: int, built_at_ms: int
) -> profile_pb2.UserProfile:
    out = profile_pb2.UserProfile()
    out.CopyFrom(profile)
    out.cohort_id = cohort_id
    out.cohort_size = cohort_size
    out.built_at_ms = built_at_ms
    return out
