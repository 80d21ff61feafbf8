"""Profile values the profiler could not read (STANCE_UNREADABLE, TRAIT_LEVEL_UNKNOWN) never become pairs."""

from __future__ import annotations

from gravity.v1 import profile_pb2
from gravity_core.skips import SkipLog
from gravity_core.values import load_seed_statements
from gravity_pairgen.banks import PersonalityBank, load_builtin
from gravity_pairgen.facets import personality_pairs, values_pairs
from gravity_pairgen.rows import Omissions
from gravity_pairgen.scenarios import load_pool


def _profile() -> profile_pb2.UserProfile:
    statements = load_seed_statements()[:3]
    p = profile_pb2.UserProfile(user_id="u1")
    for s, stance in zip(
        statements,
        (profile_pb2.STANCE_SUPPORT, profile_pb2.STANCE_UNREADABLE, profile_pb2.STANCE_NEUTRAL),
        strict=True,
    ):
        p.values.add(statement_id=s.id, stance=stance, statement=s.text)
    p.personality.traits.add(trait=profile_pb2.TRAIT_OPENNESS, level=profile_pb2.TRAIT_LEVEL_HIGH)
    p.personality.traits.add(trait=profile_pb2.TRAIT_CONSCIENTIOUSNESS, level=profile_pb2.TRAIT_LEVEL_UNKNOWN)
    p.personality.traits.add(trait=profile_pb2.TRAIT_EXTRAVERSION, level=profile_pb2.TRAIT_LEVEL_LOW)
    p.personality.traits.add(trait=profile_pb2.TRAIT_AGREEABLENESS, level=profile_pb2.TRAIT_LEVEL_UNKNOWN)
    p.personality.traits.add(trait=profile_pb2.TRAIT_NEUROTICISM, level=profile_pb2.TRAIT_LEVEL_HIGH)
    return p


def test_unreadable_stances_make_no_pairs_and_are_counted_apart_from_neutral() -> None:
    statements = load_seed_statements()
    pool = load_pool(None, statements)
    omissions = Omissions()
    profile = _profile()
    pairs = values_pairs(profile, "You are a reader.", pool, {s.id: s for s in statements}, 3, omissions)
    supported = profile.values[0].statement_id
    assert pairs and {p.provenance[0] for p in pairs} == {f"statement:{supported}"}
    assert omissions.counts["unreadable_statement"] == 1 and omissions.counts["neutral_statement"] == 1


def test_unknown_traits_make_no_pairs_and_are_counted_as_skipped() -> None:
    bank = PersonalityBank.build(load_builtin(SkipLog()))
    omissions = Omissions()
    pairs = personality_pairs(_profile(), "You are a reader.", bank, 5, 13, omissions)
    assert {p.trait for p in pairs} == {"openness", "extraversion", "neuroticism"}
    assert omissions.counts["trait_unreadable"] == 2 and omissions.counts["trait_level_unknown"] == 0
    # the known levels still choose their own answers
    items = {f"{i.source}:{i.id}": i for i in load_builtin(SkipLog())}
    for pair in pairs:
        item = items[pair.provenance[0]]
        high = pair.trait in ("openness", "neuroticism")
        assert pair.chosen in (item.high if high else item.low)
