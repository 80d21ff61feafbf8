"""Fixtures: UserProfiles built directly from the bundled sample (no profiler), with hand-set stances
and traits, so these tests depend only on gravity-core."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.amazon import iter_reviews, read_demographics
from gravity_core.catalog import Catalog
from gravity_core.proto_io import write_jsonl
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
    reviews: list,
    catalog: Catalog,
    demographics: object | None = None,
    cohort_id: str = "sample",
    cohort_size: int = 16,
) -> profile_pb2.UserProfile:
    """A profile as the profiler would publish it: genres >= 10% of reviews, a stance on every seed
    statement and a level for every trait (both hand-set from a hash of the user id)."""
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
        personality=profile_pb2.Personality(traits=traits, estimator="test"),
        user_summary="A keen reader.",
        review_count=len(reviews),
        reviews=[r.to_proto() for r in ordered],
        reviewed_asins=[r.parent_asin for r in ordered],
        cohort_id=cohort_id,
        cohort_size=cohort_size,
        built_at_ms=1_700_000_000_000,
        version=1,
    )


@pytest.fixture(scope="session")
def sample_catalog(sample_files: dict[str, Path]) -> Catalog:
    return Catalog.open(sample_files["meta_Books.jsonl"])


@pytest.fixture(scope="session")
def sample_profiles(sample_files: dict[str, Path], sample_catalog: Catalog) -> list[profile_pb2.UserProfile]:
    """The 16 main sample readers (the two casual readers have too few reviews to be profiled)."""
    skips = SkipLog()
    by_user: dict[str, list] = defaultdict(list)
    for _, review in iter_reviews(sample_files["Books.jsonl"], skips):
        by_user[review.user_id].append(review)
    demographics = read_demographics(sample_files["demographics.csv"], skips)
    main = sorted(u for u, rs in by_user.items() if len(rs) >= 10)
    return [
        make_profile(u, by_user[u], sample_catalog, demographics.get(u), cohort_size=len(main)) for u in main
    ]


@pytest.fixture
def write_profiles(tmp_path: Path) -> Callable[..., Path]:
    def write(profiles: list[profile_pb2.UserProfile], name: str = "profiles.jsonl") -> Path:
        path = tmp_path / name
        write_jsonl(profiles, path)
        return path

    return write
