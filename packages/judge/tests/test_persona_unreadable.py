"""The judge's persona (paper D.3) never renders a value the profiler could not read."""

from __future__ import annotations

from gravity.v1 import profile_pb2
from gravity_core.prompts import TRAIT_NAMES
from gravity_judge.persona import Persona


def test_persona_leaves_out_unknown_traits_and_unreadable_stances() -> None:
    p = profile_pb2.UserProfile(user_id="u1", user_summary="Reads slow mysteries")
    p.demographics.age_group.value = "senior"
    p.demographics.country.value = "Japan"
    p.values.add(statement_id="s1", stance=profile_pb2.STANCE_UNREADABLE, statement="Tradition is a duty.")
    for trait in TRAIT_NAMES:
        p.personality.traits.add(trait=trait, level=profile_pb2.TRAIT_LEVEL_UNKNOWN)
    text = Persona.from_profile(p).text()
    assert text == "You are a senior person from Japan. Reads slow mysteries."
    assert "Tradition" not in text and not any(name in text for name in TRAIT_NAMES.values())
