"""Recovery scoring on constructed profiles (a profile that reads exactly what the reviews express, the true
profile itself, an inverted one, unreadable answers, a missing reader), and the real profiler's batch path
on one small planted reader (the report's shape, never its quality)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gravity.v1 import common_pb2, profile_pb2
from gravity_fidelity.plant import PlantOptions, plant
from gravity_fidelity.recovery import score_profiles
from gravity_fidelity.report import REPORT_JSON, REPORT_MD, recovery_line
from gravity_fidelity.truth import (
    LEVEL_PROTO,
    STANCE_PROTO,
    ReaderTruth,
    read_manifest,
    read_truths,
    truth_profile,
)

COUNTRIES = ["USA", "Brazil", "India", "Japan"]


@pytest.fixture(scope="module")
def truths(tmp_path_factory: pytest.TempPathFactory) -> list[ReaderTruth]:
    out = tmp_path_factory.mktemp("recovery") / "planted"
    plant(PlantOptions(readers=3, seed=11, withhold=2), out)
    return read_truths(out)


def reading(truth: ReaderTruth) -> profile_pb2.UserProfile:
    """What a perfect reader of the reviews would write: the true stance where expressed, neutral elsewhere,
    and the true demographics."""
    profile = truth_profile(truth)
    for value in profile.values:
        value.stance = STANCE_PROTO[truth.expected_stance(value.statement_id)]
    return profile


def test_a_profile_that_reads_exactly_what_is_expressed_scores_perfectly(truths: list[ReaderTruth]) -> None:
    r = score_profiles("perfect", truths, [reading(t) for t in truths], COUNTRIES)
    assert r.readers == 3 and not r.missing_profiles
    assert r.stances_expressed.model.n == 3 * 12
    assert r.stances_expressed.model.accuracy == r.stances_expressed.model.macro_f1 == 1.0
    assert r.stances_unexpressed.model.n == 3 * (150 - 12)
    assert r.stances_unexpressed.model.accuracy == 1.0
    assert r.traits.model.accuracy == 1.0 and r.traits.model.n == 3 * 5
    assert (r.genres.precision, r.genres.recall) == (1.0, 1.0)
    assert r.demographics_pooled["n"] == 3 * 2 and r.demographics_pooled["accuracy"] == 1.0


def test_the_true_profile_is_wrong_exactly_where_unexpressed_stances_are_not_neutral(
    truths: list[ReaderTruth],
) -> None:
    r = score_profiles("truth", truths, [truth_profile(t) for t in truths], COUNTRIES)
    assert r.stances_expressed.model.accuracy == 1.0
    unexpressed = [t.stances[s] for t in truths for s in t.stances if s not in t.expressed.statements]
    assert r.stances_unexpressed.model.accuracy == pytest.approx(
        unexpressed.count("neutral") / len(unexpressed)
    )
    # the majority baseline (all neutral) is perfect on unexpressed statements
    assert r.stances_unexpressed.majority.accuracy == 1.0


def test_an_inverted_profile(truths: list[ReaderTruth]) -> None:
    flip = {"support": "oppose", "oppose": "support", "neutral": "neutral"}
    profiles = []
    for t in truths:
        p = reading(t)
        for v in p.values:
            v.stance = STANCE_PROTO[flip[t.expected_stance(v.statement_id)]]
        for trait in p.personality.traits:
            trait.level = (
                profile_pb2.TRAIT_LEVEL_LOW
                if trait.level == profile_pb2.TRAIT_LEVEL_HIGH
                else profile_pb2.TRAIT_LEVEL_HIGH
            )
        profiles.append(p)
    r = score_profiles("inverted", truths, profiles, COUNTRIES)
    expressed = [t.stances[s] for t in truths for s in t.expressed.statements]
    assert r.stances_expressed.model.accuracy == pytest.approx(expressed.count("neutral") / len(expressed))
    assert r.traits.model.accuracy == 0.0


def test_unreadable_and_unknown_answers_count_as_wrong_and_are_counted(truths: list[ReaderTruth]) -> None:
    t = truths[0]
    p = reading(t)
    first = t.expressed.statements[0]
    next(v for v in p.values if v.statement_id == first).stance = profile_pb2.STANCE_UNREADABLE
    p.personality.traits[0].level = profile_pb2.TRAIT_LEVEL_UNKNOWN
    withheld = t.withheld[0]
    getattr(p.demographics, withheld).CopyFrom(common_pb2.DemographicField())
    r = score_profiles("m", [t], [p], COUNTRIES)
    assert r.unreadable_stances == 1 and r.stances_expressed.model.invalid == 1
    assert r.stances_expressed.model.accuracy == pytest.approx(11 / 12)
    assert r.unknown_traits == 1 and r.traits.model.accuracy == pytest.approx(4 / 5)
    assert r.demographics[withheld].model.invalid == 1
    assert r.demographics_pooled["unknown"] == 1


def test_a_reader_without_a_profile_is_listed_not_scored(truths: list[ReaderTruth]) -> None:
    r = score_profiles("m", truths, [reading(truths[0])], COUNTRIES)
    assert r.readers == 1
    assert r.missing_profiles == [truths[1].user_id, truths[2].user_id]
    assert r.stances_expressed.model.n == 12


def test_only_withheld_demographics_are_scored(truths: list[ReaderTruth]) -> None:
    r = score_profiles("perfect", truths, [reading(t) for t in truths], COUNTRIES)
    withheld = sorted(f for t in truths for f in t.withheld)
    assert sorted(f for f, c in r.demographics.items() for _ in range(c.model.n)) == withheld
    assert LEVEL_PROTO["high"] == profile_pb2.TRAIT_LEVEL_HIGH


@pytest.mark.model
def test_the_real_profiler_on_a_small_planted_reader(tmp_path: Path, make_settings) -> None:
    """The batch path of gravity profile build on one planted reader (4 reviews), as a demo's quick check
    runs it, and the report it yields."""
    from gravity_fidelity.steps import quick_recovery

    out = tmp_path / "out"
    r = quick_recovery(make_settings(), out, readers=1, seed=2)
    assert r["model"] == "embedded:smollm2-135m" and r["readers"] == 1 and r["missing_profiles"] == []
    assert r["stances_expressed"]["n"] == 4 and r["stances_unexpressed"]["n"] == 146
    assert r["traits"]["n"] == 5
    assert r["genres"]["actual"] == 2
    assert r["demographics_pooled"]["n"] == 1
    assert sum(r["stances_expressed"]["predicted"].values()) == 4
    report = json.loads((out / REPORT_JSON).read_text())
    assert report["plant"]["seed"] == read_manifest(out / "planted").seed == 2
    assert report["recovery"] == [r]
    assert "stance macro-F1, expressed statements" in (out / REPORT_MD).read_text()
    assert recovery_line(r).startswith(
        "recovery on 1 planted readers (embedded:smollm2-135m): stance macro-F1 "
    )
