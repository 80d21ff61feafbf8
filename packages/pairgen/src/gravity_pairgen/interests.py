"""Interest facets (paper §3.3, appendix B): Category and Summary pairs.

Every catalog category name is embedded once with MiniLM into a FAISS index. For each user the three
categories least similar to their top genre are the "distinct" ones; Category pairs put each of the
user's genres (chosen) against each distinct category (rejected), and Summary pairs put the descriptions
of highly rated books of the user's genres against those of the distinct categories. Books the user
reviewed never appear, nor does any book held out for evaluation (gravity_core.targets).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gravity_core.amazon import BookRecord
from gravity_core.catalog import Catalog
from gravity_core.embeddings import Embedder, VectorIndex
from gravity_core.targets import EvaluationPool

# Ranked books kept per genre beyond what one user needs, so a user's reviewed books rarely force a query.
_RANK_RESERVE = 32


class CategoryIndex:
    """Catalog category names embedded with MiniLM, searchable by (dis)similarity."""

    def __init__(self, genres: Sequence[str], index: VectorIndex, vectors: Mapping[str, Any]) -> None:
        self.genres = tuple(genres)
        self._index = index
        self._vectors = vectors
        self._distinct: dict[tuple[str, int, tuple[str, ...]], list[str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def build(cls, genres: Iterable[str], embedder: Embedder) -> CategoryIndex:
        names = sorted(set(genres))
        vectors = embedder.encode(names)
        return cls(names, VectorIndex.build(names, vectors), dict(zip(names, vectors, strict=True)))

    def __contains__(self, genre: object) -> bool:
        return genre in self._vectors

    def __len__(self) -> int:
        return len(self.genres)

    def distinct(self, top_genre: str, k: int, exclude: Iterable[str] = ()) -> list[str]:
        """The ``k`` categories least similar to ``top_genre``, never one of ``exclude``."""
        excluded = tuple(sorted(set(exclude) | {top_genre}))
        key = (top_genre, k, excluded)
        with self._lock:
            hit = self._distinct.get(key)
        if hit is None:
            hit = [g for g, _ in self._index.least_similar(self._vectors[top_genre], k, exclude=excluded)]
            with self._lock:
                self._distinct[key] = hit
        return list(hit)


class BookRanker:
    """The catalog's highly rated books per genre that training may use, ranked once and reused for every
    user: the genre's evaluation pool (held out for evaluation) is never among them."""

    def __init__(self, catalog: Catalog, held_out: EvaluationPool | None = None) -> None:
        self.catalog = catalog
        self.held_out = held_out or EvaluationPool(catalog)
        self._ranked: dict[tuple[str, int], list[BookRecord]] = {}
        self._lock = threading.Lock()

    def top(self, genre: str, n: int, exclude: Iterable[str] = ()) -> list[BookRecord]:
        excluded = set(exclude) | {b.parent_asin for b in self.held_out.books(genre)}
        limit = n + _RANK_RESERVE
        key = (genre, limit)
        with self._lock:
            ranked = self._ranked.get(key)
        if ranked is None:
            ranked = self.catalog.top_rated(genre, limit)
            with self._lock:
                self._ranked[key] = ranked
        out = [b for b in ranked if b.parent_asin not in excluded][:n]
        if len(out) < n and len(ranked) == limit:
            # This user reviewed more of the genre's best books than the reserve holds: ask the catalog.
            out = self.catalog.top_rated(genre, n, exclude=excluded)
        return out

    def top_across(self, genres: Sequence[str], n: int, exclude: Iterable[str] = ()) -> list[BookRecord]:
        """Up to ``n`` distinct books drawn round-robin from ``genres`` (best first within each genre)."""
        excluded = set(exclude)
        pools = [self.top(g, n, exclude=excluded) for g in genres]
        out: list[BookRecord] = []
        seen: set[str] = set()
        depth = 0
        while len(out) < n and any(depth < len(p) for p in pools):
            for pool in pools:
                if depth < len(pool) and pool[depth].parent_asin not in seen and len(out) < n:
                    seen.add(pool[depth].parent_asin)
                    out.append(pool[depth])
            depth += 1
        return out
