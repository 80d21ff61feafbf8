"""Preference pairs and SFT examples as built for one user, with their deterministic ids."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def pair_id(user_id: str, facet: str, provenance: Sequence[str]) -> str:
    """A stable id: the same user, facet and source ids always hash to the same 24 hex characters."""
    key = "\x1f".join((user_id, facet, *provenance))
    return hashlib.blake2b(key.encode("utf-8"), digest_size=12).hexdigest()


@dataclass(slots=True, frozen=True)
class Pair:
    """A DPO preference pair (``rejected`` set) or an SFT example (``rejected`` empty, ``chosen`` = completion)."""

    pair_id: str
    facet: str
    trait: str
    prompt: str
    chosen: str
    rejected: str
    provenance: tuple[str, ...]


def make_pair(
    user_id: str,
    facet: str,
    prompt: str,
    chosen: str,
    rejected: str,
    provenance: tuple[str, ...],
    trait: str = "",
) -> Pair:
    return Pair(pair_id(user_id, facet, provenance), facet, trait, prompt, chosen, rejected, provenance)


@dataclass
class Omissions:
    """Items that could not become rows (not bad records): counted by reason for the run summary."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str, n: int = 1) -> None:
        if n:
            self.counts[reason] += n

    def merge(self, other: Omissions) -> None:
        self.counts.update(other.counts)


def dedupe(pairs: Iterable[Pair], omissions: Omissions, dpo: bool = True) -> list[Pair]:
    """First occurrence of each pair_id; degenerate rows (empty text, chosen == rejected) are dropped."""
    seen: set[str] = set()
    out: list[Pair] = []
    for p in pairs:
        if p.pair_id in seen:
            omissions.add("duplicate_pair_id")
            continue
        if not p.chosen.strip() or (dpo and (not p.rejected.strip() or p.chosen == p.rejected)):
            omissions.add(f"degenerate_{p.facet}")
            continue
        seen.add(p.pair_id)
        out.append(p)
    return out
