"""Presentation orders: the paper protocol's one seeded shuffle, the debiased protocol's balanced orders.

Balanced orders are cyclic rotations of one seeded shuffle: with as many rotations as candidates, every
description is shown in every slot exactly once (a Latin square), which is what lets the judge's slot
prior be estimated from its answers and divided out (debias.py). A cap below the number of candidates
takes rotations spaced evenly around the cycle: every description still appears at most once per slot
and in as many different slots as there are orders, but not in every slot, so the per-reader balance is
partial and the prior estimate leans on the shuffles differing across readers (the report says which).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence


def order_rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def shuffled(n: int, rng: random.Random) -> list[int]:
    """One seeded permutation of range(n): the paper protocol's presentation order."""
    order = list(range(n))
    rng.shuffle(order)
    return order


def orders_for(n: int, cap: int) -> int:
    """How many balanced orders a ranking of ``n`` gets: all ``n`` rotations, or ``cap`` when it is lower
    (0 = no cap)."""
    return n if cap <= 0 else min(cap, n)


def balanced_orders(n: int, cap: int, rng: random.Random) -> list[list[int]]:
    """Rotations of one seeded shuffle of range(n): all ``n`` (fully balanced) or ``cap`` spaced evenly."""
    base = shuffled(n, rng)
    k = orders_for(n, cap)
    offsets = sorted({(i * n) // k for i in range(k)})
    return [base[o:] + base[:o] for o in offsets]


def is_balanced(orders: Sequence[Sequence[int]]) -> bool:
    """Whether every candidate appears in every slot equally often."""
    if not orders:
        return False
    n = len(orders[0])
    placements = Counter((candidate, slot) for order in orders for slot, candidate in enumerate(order))
    return len(placements) == n * n and len(set(placements.values())) == 1
