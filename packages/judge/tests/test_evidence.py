"""Profile evidence in the report: counts from UserProfile.evidence, unknown (not 0) for old profiles."""

from __future__ import annotations

from judge_fixtures import profile

from gravity.v1 import profile_pb2
from gravity_judge.evidence import Evidence, summarize
from gravity_judge.persona import Persona


def _with_evidence(user_id: str, read: int, total: int, stances: int, items: int, unknown: int):  # type: ignore[no-untyped-def]
    p = profile(user_id, "young", "female", "India", "Reads a lot.")
    p.evidence.reviews_total, p.evidence.reviews_read, p.evidence.chunks = total, read, 2
    p.evidence.unreadable_stances, p.evidence.unreadable_items = stances, items
    for k in range(unknown):
        p.personality.traits.add(trait=k + 1, level=profile_pb2.TRAIT_LEVEL_UNKNOWN)
    p.personality.traits.add(trait=5, level=profile_pb2.TRAIT_LEVEL_HIGH, score=0.8)
    return p


def test_evidence_is_summed_and_old_profiles_are_unknown() -> None:
    new_a = Persona.from_profile(_with_evidence("A", 60, 60, 0, 3, 1)).evidence
    new_b = Persona.from_profile(_with_evidence("B", 20, 50, 4, 0, 0)).evidence
    old = Persona.from_profile(profile("C", "senior", "male", "USA", "Old profile.")).evidence
    assert new_a == Evidence(60, 60, 2, 0, 3, 1) and new_a.recorded
    assert old == Evidence() and not old.recorded and old.reviews_read is None
    out = summarize([("B", new_b), ("A", new_a), ("C", old), ("D", None)])
    assert (out["readers"], out["with_evidence"], out["without_evidence"]) == (4, 2, 2)
    assert out["reviews_read"] == {"sum": 80, "min": 20, "median": 40.0, "max": 60, "of_total": 110}
    assert out["unreadable_stances"] == {"sum": 4, "readers_affected": 1, "readers": 2}
    assert out["unreadable_items"] == {"sum": 3, "readers_affected": 1, "readers": 2}
    assert out["unknown_traits"] == {"sum": 1, "readers_affected": 1, "readers": 3}
    by_user = {r["user_id"]: r for r in out["per_reader"]}
    assert by_user["C"]["reviews_read"] is None and by_user["D"]["unreadable_items"] is None  # unknown, not 0
    assert by_user["A"]["reviews_read"] == 60
    nothing = summarize([("C", old)])
    assert nothing["reviews_read"] is None and nothing["unreadable_stances"] is None
