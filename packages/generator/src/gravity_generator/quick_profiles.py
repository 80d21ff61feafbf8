"""Profiles built from review counts alone, with no model: for benchmarks, tests and trying the generator
before the profiler has run.

Demographics come from the demographics file, interests from genre shares (the paper's 10% threshold),
reviews as they are. Values, personality and the reader summary are plain restatements of those facts,
clearly not the profiler's inferences: use real profiles (``gravity profile``) for anything you evaluate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.amazon import ReviewRecord, iter_reviews, read_demographics
from gravity_core.catalog import Catalog
from gravity_core.skips import SkipLog

INTEREST_SHARE = 0.10
MAX_REVIEWS = 50


def quick_profiles(
    reviews_path: str | Path,
    catalog: Catalog,
    demographics_path: str | Path | None = None,
    min_reviews: int = 5,
    skips: SkipLog | None = None,
) -> list[profile_pb2.UserProfile]:
    skips = skips if skips is not None else SkipLog()
    by_user: dict[str, list[ReviewRecord]] = defaultdict(list)
    for _, review in iter_reviews(reviews_path, skips):
        by_user[review.user_id].append(review)
    demographics = read_demographics(demographics_path, skips) if demographics_path else {}
    books = catalog.get_many({r.parent_asin for rs in by_user.values() for r in rs})
    out = []
    for user_id in sorted(by_user):
        reviews = sorted(by_user[user_id], key=lambda r: -r.timestamp_ms)
        if len(reviews) < min_reviews:
            skips.add("below_threshold", f"{len(reviews)} reviews < {min_reviews}", record_id=user_id)
            continue
        profile = profile_pb2.UserProfile(user_id=user_id, review_count=len(reviews), version=1)
        d = demographics.get(user_id)
        if d is not None:
            given = common_pb2.PROVENANCE_GIVEN
            for name, value in (("age_group", d.age_group), ("gender", d.gender), ("country", d.country)):
                if value:
                    getattr(profile.demographics, name).CopyFrom(
                        common_pb2.DemographicField(value=value, provenance=given, confidence=1.0)
                    )
            profile.demographics.age = d.age or 0
        genres = Counter(books[r.parent_asin].genre for r in reviews if r.parent_asin in books)
        groups = {
            books[r.parent_asin].genre: books[r.parent_asin].genre_group
            for r in reviews
            if r.parent_asin in books
        }
        for genre, count in genres.most_common():
            share = count / len(reviews)
            if genre and share >= INTEREST_SHARE:
                profile.interests.add(genre=genre, share=share, review_count=count, genre_group=groups[genre])
        top = ", ".join(i.genre for i in profile.interests) or "many genres"
        profile.value_summary = f"Values what the books they love stand for ({top})."
        profile.user_summary = (
            f"A reader who has reviewed {len(reviews)} books, mostly {top}, "
            f"and rates them {sum(r.rating for r in reviews) / len(reviews):.1f} stars on average."
        )
        profile.reviews.extend(r.to_proto() for r in reviews[:MAX_REVIEWS])
        profile.reviewed_asins.extend(sorted({r.parent_asin for r in reviews}))
        profile.built_at_ms = max(r.timestamp_ms for r in reviews)
        profile.revision = f"quick-{len(reviews)}-{profile.built_at_ms}"
        out.append(profile)
    return out
