"""Held-out splits by unit, not by row, and the profile-blind control's shuffle (paper §3.3–3.4 measured).

A held-out pair must test whether the model uses the profile on something it never trained on, so pairs are
held out by what they are about: a seeded share of the **statements** (all their values pairs), of the
**books** (every Summary pair showing one), of the **genres** (every Category pair naming one) and of the
situational-judgment **items** of each trait. A pair touching any held-out unit is a test pair; every other
pair trains. So no training pair shares a statement, book, genre or item with a test pair.

The control is trained on the very same pairs with each reader's profile replaced by another reader's: a
permutation with no fixed points (a derangement), so no pair keeps its own reader's preamble and the labels
say nothing about the profile shown.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gravity_pairgen.rows import Pair

# Provenance prefixes (gravity_pairgen.facets) of the units pairs are held out by.
STATEMENT = "statement:"
BOOK = "asin:"
GENRE = "genre:"


def seeded_rng(seed: int, purpose: str) -> random.Random:
    digest = hashlib.sha256(f"gravity-fidelity:{purpose}:{seed}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def item_ids(pair: Pair) -> list[str]:
    """A personality pair's item id(s): its provenance ids, which are ``<source>:<item id>``."""
    return list(pair.provenance) if pair.facet == "personality" else []


@dataclass(frozen=True)
class HoldOut:
    """The held-out units, as the provenance ids pairs carry (``statement:…``, ``asin:…``, ``genre:…``,
    ``<bank>:<item>``)."""

    units: frozenset[str]

    def holds(self, pair: Pair) -> bool:
        return any(p in self.units for p in pair.provenance)

    def count(self, prefix: str) -> int:
        return sum(u.startswith(prefix) for u in self.units)

    @property
    def items(self) -> int:
        return sum(not u.startswith((STATEMENT, BOOK, GENRE)) for u in self.units)


def _share(units: Iterable[str], fraction: float, rng: random.Random) -> set[str]:
    pool = sorted(set(units))
    if not pool or fraction <= 0:
        return set()
    return set(rng.sample(pool, max(1, round(fraction * len(pool)))))


def choose_hold_out(pairs: Sequence[Pair], fraction: float, seed: int) -> HoldOut:
    """Hold out ``fraction`` of the statements, books, genres and (per trait) items the pairs use."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    rng = seeded_rng(seed, "hold-out")
    ids = {p for pair in pairs for p in pair.provenance}
    units = _share((i for i in ids if i.startswith(STATEMENT)), fraction, rng)
    units |= _share((i for i in ids if i.startswith(BOOK)), fraction, rng)
    units |= _share((i for i in ids if i.startswith(GENRE)), fraction, rng)
    by_trait: dict[str, set[str]] = {}
    for pair in pairs:
        for item in item_ids(pair):
            by_trait.setdefault(pair.trait, set()).add(item)
    for trait in sorted(by_trait):
        units |= _share(by_trait[trait], fraction, rng)
    return HoldOut(frozenset(units))


def split_pairs(pairs: Sequence[Pair], hold_out: HoldOut) -> tuple[list[Pair], list[Pair]]:
    """(train, test): a pair touching a held-out unit is a test pair."""
    train: list[Pair] = []
    test: list[Pair] = []
    for pair in pairs:
        (test if hold_out.holds(pair) else train).append(pair)
    return train, test


def derangement(readers: Sequence[str], seed: int) -> dict[str, str]:
    """reader -> the reader whose profile replaces theirs: one seeded cycle through all readers (Sattolo's
    algorithm), so nobody keeps their own. Needs at least two readers."""
    order = sorted(set(readers))
    if len(order) < 2:
        raise ValueError("a profile-blind control needs at least two readers to swap profiles between")
    rng = seeded_rng(seed, "derangement")
    cycle = list(order)
    for i in range(len(cycle) - 1, 0, -1):
        j = rng.randrange(i)  # j < i: Sattolo's variant of Fisher-Yates yields a single cycle
        cycle[i], cycle[j] = cycle[j], cycle[i]
    return {cycle[k]: cycle[(k + 1) % len(cycle)] for k in range(len(cycle))}


def swap_preamble(pair: Pair, own: str, other: str) -> Pair:
    """``pair`` with its reader's preamble ``own`` replaced by ``other`` (everything else unchanged)."""
    if not pair.prompt.startswith(own):
        raise ValueError(f"pair {pair.pair_id} does not start with its reader's GRAVITY preamble")
    return Pair(
        pair.pair_id,
        pair.facet,
        pair.trait,
        other + pair.prompt[len(own) :],
        pair.chosen,
        pair.rejected,
        pair.provenance,
    )
