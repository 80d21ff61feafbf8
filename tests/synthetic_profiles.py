"""UserProfiles built straight from reviews, without the profiler's LLM: interests from genre shares,
stances and trait levels hand-set from a hash of the user id.

For tests and benchmarks of everything downstream of the profiler (pairgen, trainer, generator, judge),
so they depend only on gravity-core and stay deterministic.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.amazon import iter_reviews, read_demographics
from gravity_core.catalog import Catalog
from gravity_core.skips import SkipLog
from gravity_core.values import load_seed_statements

STANCES = (profile_pb2.STANCE_SUPPORT, profile_pb2.STANCE_OPPOSE, profile_pb2.STANCE_NEUTRAL)
TRAITS = (
    profile_pb2.TRAIT_OPENNESS,
    profile_pb2.TRAIT_CONSCIENTIOUSNESS,
    profile_pb2.TRAIT_EXTRAVERSION,
    profile_pb2.TRAIT_AGREEABLENESS,
    profile_pb2.TRAIT_NEUROTICISM,
)


def _pick(user_id: str, key: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{user_id}:{key}".encode()).digest()[:4], "big") % n


def make_profile(
    user_id: str,
    reviews: list[Any],
    catalog: Catalog,
    demographics: object | None = None,
    cohort_id: str = "sample",
    cohort_size: int = 16,
) -> profile_pb2.UserProfile:
    """A profile as the profiler would publish it: genres >= 10% of reviews, a stance on every seed
    statement and a level for every trait."""
    books = catalog.get_many(r.parent_asin for r in reviews)
    genres = Counter(books[r.parent_asin].genre for r in reviews if r.parent_asin in books)
    total = sum(genres.values())
    interests = [
        profile_pb2.Interest(genre=g, share=n / total, review_count=n)
        for g, n in genres.most_common()
        if n / total >= 0.10
    ]
    values = [
        profile_pb2.ValueStance(
            statement_id=s.id,
            stance=STANCES[_pick(user_id, s.id, 3)],
            confidence=1.0,
            statement=s.text,
            framework=s.framework,
            topic=s.topic,
        )
        for s in load_seed_statements()
    ]
    traits = [
        profile_pb2.TraitScore(
            trait=t,
            level=profile_pb2.TRAIT_LEVEL_HIGH if _pick(user_id, str(t), 2) else profile_pb2.TRAIT_LEVEL_LOW,
        )
        for t in TRAITS
    ]
    ordered = sorted(reviews, key=lambda r: -r.timestamp_ms)
    demo = common_pb2.Demographics()
    if demographics is not None:
        demo.country.value = getattr(demographics, "country", "") or ""
        demo.gender.value = getattr(demographics, "gender", "") or ""
        demo.age_group.value = getattr(demographics, "age_group", "") or ""
    return profile_pb2.UserProfile(
        user_id=user_id,
        demographics=demo,
        interests=interests,
        values=values,
        value_summary="Values family, tradition and hard work; sceptical of luck.",
        personality=profile_pb2.Personality(traits=traits, estimator="synthetic"),
        user_summary="A keen reader.",
        review_count=len(reviews),
        reviews=[r.to_proto() for r in ordered],
        reviewed_asins=[r.parent_asin for r in ordered],
        cohort_id=cohort_id,
        cohort_size=cohort_size,
        built_at_ms=1_700_000_000_000,
        version=1,
    )


def profiles_from_files(
    reviews: Path,
    catalog: Catalog,
    demographics: Path | None = None,
    min_reviews: int = 10,
    cohort_id: str = "sample",
) -> list[profile_pb2.UserProfile]:
    """One synthetic profile per reader with at least ``min_reviews`` reviews, sorted by user id."""
    skips = SkipLog()
    by_user: dict[str, list[Any]] = defaultdict(list)
    for _, review in iter_reviews(reviews, skips):
        by_user[review.user_id].append(review)
    demo = read_demographics(demographics, skips) if demographics else {}
    main = sorted(u for u, rs in by_user.items() if len(rs) >= min_reviews)
    return [
        make_profile(u, by_user[u], catalog, demo.get(u), cohort_id=cohort_id, cohort_size=len(main))
        for u in main
    ]
