"""Interests (paper §3.2): the genres holding at least ``threshold`` of a user's reviews, with shares.

A book's genre is the last element of its Amazon category path and its genre group the element under
"Books" (``["Books", "Literature & Fiction", "Historical Fiction"]`` -> genre "Historical Fiction", group
"Literature & Fiction"); see gravity_core.amazon. Shares are over all of the user's reviews, so a review
of a book without a genre (a path of just ``["Books"]``) still counts in the denominator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gravity.v1 import profile_pb2
from gravity_core.amazon import BookRecord, ReviewRecord


def interests(
    reviews: Sequence[ReviewRecord], books: dict[str, BookRecord], threshold: float
) -> list[profile_pb2.Interest]:
    """Interest messages sorted by share (descending), then genre name."""
    total = len(reviews)
    if total == 0:
        return []
    counts: Counter[str] = Counter()
    groups: dict[str, Counter[str]] = {}
    for review in reviews:
        book = books.get(review.parent_asin)
        if book is None or not book.genre:
            continue
        counts[book.genre] += 1
        groups.setdefault(book.genre, Counter())[book.genre_group] += 1
    # A tiny epsilon keeps exact-threshold shares (e.g. 2 of 20 at 10%) in despite float rounding.
    chosen = [(g, n) for g, n in counts.items() if n / total >= threshold - 1e-9]
    chosen.sort(key=lambda gn: (-gn[1], gn[0]))
    return [
        profile_pb2.Interest(
            genre=genre,
            share=n / total,
            review_count=n,
            genre_group=groups[genre].most_common(1)[0][0],
        )
        for genre, n in chosen
    ]
