"""LaMP retrieval (paper D.2): the user's reviews of the books most similar to the target book.

The descriptions of the books a user reviewed are embedded with MiniLM into a FAISS index (one per user,
kept in an LRU cache keyed by the profile's revision); the target's description is the query, and the
user's reviews of the top-k books are what the prompt prepends. A reviewed book missing from the catalog
is represented by the review itself, so no review is silently ignored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.catalog import Catalog
from gravity_core.embeddings import Embedder, VectorIndex
from gravity_generator.methods import BookInput


@dataclass
class UserIndex:
    index: VectorIndex
    reviews: dict[str, common_pb2.Review]  # parent_asin -> the user's review of it
    missing_from_catalog: int


@dataclass
class Retrieved:
    reviews: list[str]
    warnings: list[str]


class LampRetriever:
    def __init__(
        self,
        catalog: Catalog | None,
        embedder: Callable[[], Embedder],
        k: int = 5,
        cache_users: int = 1024,
        review_chars: int = 1200,
    ) -> None:
        self.catalog = catalog
        self._embedder_factory = embedder
        self._embedder: Embedder | None = None
        self.k = k
        self.review_chars = review_chars
        self._cache: OrderedDict[tuple[str, str, int, int], UserIndex] = OrderedDict()
        self._cache_users = cache_users
        self._lock = threading.Lock()
        self.index_builds = 0

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._embedder_factory()
            return self._embedder

    def retrieve(self, items: Sequence[tuple[profile_pb2.UserProfile, BookInput]]) -> list[Retrieved]:
        """The reviews to prepend for each (profile, target book); the queries are embedded in one batch."""
        if not items:
            return []
        queries = self.embedder.encode([book.description for _, book in items])
        out = []
        for (profile, book), query in zip(items, queries, strict=True):
            user = self._index_for(profile)
            warnings = []
            if user is None:
                out.append(
                    Retrieved(
                        [], [f"user has no reviews; LaMP ran with an empty review list ({profile.user_id})"]
                    )
                )
                continue
            if user.missing_from_catalog:
                warnings.append(
                    f"{user.missing_from_catalog} reviewed book(s) are not in the catalog; their reviews were "
                    "matched by review text"
                )
            hits = user.index.most_similar(
                query, self.k, exclude=[book.parent_asin] if book.parent_asin else []
            )
            out.append(Retrieved([self._format(user.reviews[asin]) for asin, _ in hits], warnings))
        return out

    def _format(self, review: common_pb2.Review) -> str:
        text = " ".join(review.text.split())
        if len(text) > self.review_chars:
            text = text[: self.review_chars].rsplit(" ", 1)[0] + " [...]"
        return f"{review.title.strip()}: {text}" if review.title.strip() else text

    def _index_for(self, profile: profile_pb2.UserProfile) -> UserIndex | None:
        if not profile.reviews:
            return None
        key = (profile.user_id, profile.revision, profile.built_at_ms, len(profile.reviews))
        cacheable = bool(profile.user_id)
        if cacheable:
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    return hit
        user = self._build(profile)
        if cacheable:
            with self._lock:
                self._cache[key] = user
                self._cache.move_to_end(key)
                while len(self._cache) > self._cache_users:
                    self._cache.popitem(last=False)
        return user

    def _build(self, profile: profile_pb2.UserProfile) -> UserIndex:
        reviews: dict[str, common_pb2.Review] = {}
        for review in profile.reviews:  # most recent first: keep the latest review of each book
            if review.parent_asin and review.parent_asin not in reviews:
                reviews[review.parent_asin] = review
        books = self.catalog.get_many(reviews) if self.catalog is not None else {}
        labels, texts, missing = [], [], 0
        for asin, review in reviews.items():
            book = books.get(asin)
            if book is not None and book.description.strip():
                texts.append(book.description)
            else:
                missing += 1
                texts.append(f"{review.title}. {review.text}")
            labels.append(asin)
        vectors = self.embedder.encode(texts)
        self.index_builds += 1
        return UserIndex(VectorIndex.build(labels, vectors), reviews, missing)
