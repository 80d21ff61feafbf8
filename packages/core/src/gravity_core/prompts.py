"""Prompt pieces shared by more than one service (paper Table 12, appendices C and D.3).

Services keep their own stage-specific prompts; what lives here is what must be identical wherever it
appears: the persona preamble (training and inference must condition on the same text), the description
request, and the baseline training prompts whose inference counterparts live in the generator.

Deviation, documented: the paper's Table 12 GRAVITY preamble names values and traits; appendix C adds the
reader's interests. We include interests (appendix C) in both training and inference prompts so the
preamble stays identical between the two.
"""

from __future__ import annotations

from collections.abc import Sequence

from gravity.v1 import profile_pb2

TRAIT_NAMES = {
    profile_pb2.TRAIT_OPENNESS: "Openness",
    profile_pb2.TRAIT_CONSCIENTIOUSNESS: "Conscientiousness",
    profile_pb2.TRAIT_EXTRAVERSION: "Extraversion",
    profile_pb2.TRAIT_AGREEABLENESS: "Agreeableness",
    profile_pb2.TRAIT_NEUROTICISM: "Neuroticism",
}
TRAIT_BY_NAME = {v.lower(): k for k, v in TRAIT_NAMES.items()}
LEVEL_NAMES = {profile_pb2.TRAIT_LEVEL_HIGH: "High", profile_pb2.TRAIT_LEVEL_LOW: "Low"}

DESCRIPTION_SENTENCES = "Write 6-8 sentences."


def demographics_of(profile: profile_pb2.UserProfile) -> tuple[str, str, str]:
    """(age group, gender, country) with neutral words for unknown values."""
    d = profile.demographics
    return (
        d.age_group.value or "reader of unknown age",
        d.gender.value or "person",
        d.country.value or "an unknown country",
    )


def persona(profile: profile_pb2.UserProfile) -> str:
    """'You are a {age} {gender} from {country}.' (Table 12, DemoBased/UserSFT/PrefAlign/GRAVITY; D.3)."""
    age, gender, country = demographics_of(profile)
    return f"You are a {age} {gender} from {country}."


def traits_text(profile: profile_pb2.UserProfile) -> str:
    """'High Openness, Low Extraversion, ...' in OCEAN order."""
    by_trait = {t.trait: t for t in profile.personality.traits}
    parts = [
        f"{LEVEL_NAMES[by_trait[t].level]} {name}"
        for t, name in TRAIT_NAMES.items()
        if t in by_trait and by_trait[t].level in LEVEL_NAMES
    ]
    return ", ".join(parts) if parts else "no known personality traits"


def interests_text(profile: profile_pb2.UserProfile) -> str:
    genres = [i.genre for i in sorted(profile.interests, key=lambda i: -i.share)]
    return ", ".join(genres) if genres else "no particular genres"


def gravity_preamble(profile: profile_pb2.UserProfile, include_interests: bool = True) -> str:
    """The GRAVITY conditioning text (Table 12 DPO training and final generation prompts, appendix C)."""
    text = persona(profile)
    if include_interests:
        text += f" You enjoy reading {interests_text(profile)}."
    summary = profile.value_summary.strip() or "not known"
    return f"{text} You have the following values: {summary} and personality traits: {traits_text(profile)}."


def describe_request(title: str, description: str) -> str:
    """Table 12: 'Please generate a more engaging and interesting description for this book: ...'."""
    return (
        f"Please generate a more engaging and interesting description for this book: {title} with this description: "
        f"{description.strip()}"
    )


def less_engaging_request(title: str, description: str) -> str:
    """Table 12, PrefAlign misaligned description generation."""
    return (
        f"Please generate a less engaging or interesting description for this book: {title} with this description: "
        f"{description.strip()}"
    )


def user_sft_prompt(profile: profile_pb2.UserProfile, title: str, description: str) -> str:
    """Table 12, UserSFT training prompt; the completion is the user's review."""
    return (
        f"{persona(profile)} You recently read the book: {title} with the following description: {description.strip()} "
        "and this was your review:"
    )


def pref_align_prompt(profile: profile_pb2.UserProfile) -> str:
    """Table 12, PrefAlign DPO training prompt."""
    return f"{persona(profile)} Which book description is more engaging and interesting?"


def join_reviews(reviews: Sequence[str], max_chars: int | None = None) -> str:
    """Reviews as a numbered list, optionally capped (oldest dropped first when the caller sorts newest first)."""
    lines, used = [], 0
    for i, text in enumerate(reviews, start=1):
        line = f"{i}. {text.strip()}"
        if max_chars is not None and used + len(line) > max_chars and lines:
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)
