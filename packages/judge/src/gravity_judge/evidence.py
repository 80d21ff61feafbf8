"""What each judged reader's profile was built from (issue 13: no silent defaults).

The profiler records in ``UserProfile.evidence`` how many reviews its inference read and how many stance
and personality answers it could not read; traits it could not score are ``TRAIT_LEVEL_UNKNOWN``. The
report shows these next to the metrics, since a persona built from three reviews or from unreadable
answers is a weaker stand-in for the reader. A profile written before the field existed has no evidence:
its counts are unknown (None), never 0.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from gravity.v1 import profile_pb2


@dataclass(frozen=True)
class Evidence:
    reviews_total: int | None = None
    reviews_read: int | None = None
    chunks: int | None = None
    unreadable_stances: int | None = None
    unreadable_items: int | None = None
    # Traits whose level is UNKNOWN (counted from the profile itself, so known even for old profiles).
    unknown_traits: int = 0

    @property
    def recorded(self) -> bool:
        return self.reviews_read is not None

    @classmethod
    def from_profile(cls, profile: profile_pb2.UserProfile) -> Evidence:
        unknown = sum(1 for t in profile.personality.traits if t.level == profile_pb2.TRAIT_LEVEL_UNKNOWN)
        if not profile.HasField("evidence"):
            return cls(unknown_traits=unknown)
        e = profile.evidence
        return cls(
            e.reviews_total, e.reviews_read, e.chunks, e.unreadable_stances, e.unreadable_items, unknown
        )


def _affected(values: list[int]) -> dict[str, int]:
    return {"sum": sum(values), "readers_affected": sum(1 for v in values if v > 0), "readers": len(values)}


def summarize(readers: Iterable[tuple[str, Evidence | None]]) -> dict[str, Any]:
    """The report's profile-evidence block over the judged readers (one entry per reader)."""
    rows = sorted(readers)
    known = [(uid, e) for uid, e in rows if e is not None and e.recorded]
    read = [e.reviews_read or 0 for _, e in known]
    return {
        "readers": len(rows),
        "with_evidence": len(known),
        "without_evidence": len(rows) - len(known),
        "reviews_read": None
        if not known
        else {
            "sum": sum(read),
            "min": min(read),
            "median": statistics.median(read),
            "max": max(read),
            "of_total": sum(e.reviews_total or 0 for _, e in known),
        },
        "unreadable_stances": _affected([e.unreadable_stances or 0 for _, e in known]) if known else None,
        "unreadable_items": _affected([e.unreadable_items or 0 for _, e in known]) if known else None,
        "unknown_traits": _affected([e.unknown_traits for _, e in rows if e is not None]),
        "per_reader": [
            {"user_id": uid, **(asdict(e) if e is not None else asdict(Evidence()))} for uid, e in rows
        ],
    }
