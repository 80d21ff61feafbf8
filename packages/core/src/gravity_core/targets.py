"""Evaluation targets (paper §3.4-3.5): for each reader, highly rated books from their top genres that they
have never reviewed. Deterministic for a seed, so every method is judged on the same books."""

from __future__ import annotations

import hashlib
import random

from gravity.v1 import profile_pb2
from gravity_core.amazon import BookRecord
from gravity_core.catalog import Catalog


def select_targets(
    profile: profile_pb2.UserProfile, catalog: Catalog, n: int = 5, seed: int = 13, pool_per_genre: int = 5
) -> list[BookRecord]:
    """Up to ``n`` books: the top-rated ``pool_per_genre`` unreviewed books of each interest genre form a pool,
    and books are drawn round-robin over genres (largest share first) with a per-user seeded shuffle."""
    reviewed = set(profile.reviewed_asins) | {r.parent_asin for r in profile.reviews}
    digest = hashlib.sha256(f"{seed}:{profile.user_id}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    pools: list[list[BookRecord]] = []
    for interest in sorted(profile.interests, key=lambda i: (-i.share, i.genre)):
        pool = catalog.top_rated(interest.genre, pool_per_genre, exclude=reviewed)
        rng.shuffle(pool)
        if pool:
            pools.append(pool)
    chosen: list[BookRecord] = []
    seen: set[str] = set()
    while len(chosen) < n and any(pools):
        for pool in pools:
            while pool and pool[0].parent_asin in seen:
                pool.pop(0)
            if pool and len(chosen) < n:
                book = pool.pop(0)
                seen.add(book.parent_asin)
                chosen.append(book)
    return chosen
