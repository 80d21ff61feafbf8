"""What participants are asked (paper §3.2, D.4, Figures 4-6), drawn from the platform's own banks:

* age groups as binned in §3.2, the genders the profile contract knows, the study's countries;
* the top-three genre list of Figure 4 (``gravity_core.genres``);
* the 20 Mini-IPIP items with their keying (``gravity_profiler.personality``), answered on 1-5;
* ten of the 150 seed statements (``gravity_core.values``) spread over the six topics, and five further
  statements per participant for verification.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from gravity_core.genres import cluster_names
from gravity_core.values import TOPICS, SeedStatement, load_seed_statements, statements_by_id
from gravity_profiler.personality import IpipItem, mini_ipip_items

# §3.2: young (<30), middle-aged (31-60), senior (>60); the page spells out where 30 falls.
AGE_GROUPS = (
    ("young", "Young (30 or younger)"),
    ("middle-aged", "Middle-aged (31 to 60)"),
    ("senior", "Senior (over 60)"),
)
GENDERS = (
    ("female", "Female"),
    ("male", "Male"),
    ("non-binary", "Non-binary"),
    ("", "Prefer not to say"),
)
IPIP_SCALE = (
    (1, "Very inaccurate"),
    (2, "Moderately inaccurate"),
    (3, "Neither"),
    (4, "Moderately accurate"),
    (5, "Very accurate"),
)
# Figure 4's options; stored as given, mapped to the profile's stances by STANCE_OF.
STANCE_LABELS = ("agree", "disagree", "neutral")
UNREADABLE = "unreadable"
GENRES_TO_PICK = 3
VALUE_STATEMENTS = 10
VERIFICATION_STATEMENTS = 5


def genre_options() -> tuple[str, ...]:
    return cluster_names()


def ipip_items() -> tuple[IpipItem, ...]:
    return mini_ipip_items()


def statements() -> dict[str, SeedStatement]:
    return statements_by_id(load_seed_statements())


def rng_for(seed: int, *parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def choose_value_statements(seed: int, n: int = VALUE_STATEMENTS) -> list[str]:
    """``n`` statement ids spread over the six topics (round-robin over a seeded shuffle of each topic)."""
    rng = rng_for(seed, "value-statements")
    by_topic: dict[str, list[SeedStatement]] = {t: [] for t in TOPICS}
    for st in load_seed_statements():
        by_topic[st.topic].append(st)
    topics = list(TOPICS)
    rng.shuffle(topics)
    for pool in by_topic.values():
        rng.shuffle(pool)
    chosen: list[str] = []
    while len(chosen) < n and any(by_topic.values()):
        for topic in topics:
            if by_topic[topic] and len(chosen) < n:
                chosen.append(by_topic[topic].pop().id)
    return chosen


@dataclass(frozen=True)
class Inferred:
    """One inferred stance: a label from STANCE_LABELS, or UNREADABLE."""

    label: str
    confidence: float | None
    method: str

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "confidence": self.confidence, "method": self.method}


def choose_verification(
    seed: int, participant_code: str, inferred: dict[str, dict[str, object]], n: int = VERIFICATION_STATEMENTS
) -> list[dict[str, str]]:
    """``n`` inferred statements with a readable label, spread over topics, seeded per participant."""
    rng = rng_for(seed, "verification", participant_code)
    bank = statements()
    by_topic: dict[str, list[str]] = {}
    for sid, answer in sorted(inferred.items()):
        if answer.get("label") in STANCE_LABELS and sid in bank:
            by_topic.setdefault(bank[sid].topic, []).append(sid)
    topics = sorted(by_topic)
    rng.shuffle(topics)
    for pool in by_topic.values():
        rng.shuffle(pool)
    chosen: list[dict[str, str]] = []
    while len(chosen) < n and any(by_topic.values()):
        for topic in topics:
            if by_topic[topic] and len(chosen) < n:
                sid = by_topic[topic].pop()
                chosen.append({"id": sid, "label": str(inferred[sid]["label"])})
    return chosen


def sentences(text: str) -> list[str]:
    """A description split into the sentences a participant can mark as liked (Figure 6, Table 13)."""
    from gravity_profiler.summaries import sentences as split

    return split(text)


def ordered_methods(methods: Sequence[str], seed: int, participant_code: str, parent_asin: str) -> list[str]:
    """The screen's display order: a seeded shuffle per (participant, book), recorded with the screen."""
    order = list(methods)
    rng_for(seed, "order", participant_code, parent_asin).shuffle(order)
    return order
