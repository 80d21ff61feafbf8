"""Persona swaps are well formed (each reader's evaluation books, another reader by a derangement, the truth
as persona), the judge is asked both orders, and the generator really writes both descriptions. No test
looks at which description wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from gravity_core import names
from gravity_core.catalog import Catalog
from gravity_core.errors import InvalidInput
from gravity_core.skips import SkipLog
from gravity_core.targets import EvaluationPool
from gravity_fidelity.plant import PlantOptions, plant
from gravity_fidelity.split import derangement
from gravity_fidelity.swap import OTHER, OWN, SwapUnit, judge_swaps, persona_of, swap_plan, write_descriptions
from gravity_fidelity.truth import ReaderTruth, read_truths, truth_profile


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("swap") / "planted"
    plant(PlantOptions(readers=3, seed=9), out)
    return out


@pytest.fixture(scope="module")
def truths(planted: Path) -> list[ReaderTruth]:
    return read_truths(planted)


def test_each_reader_is_paired_with_another_reader_on_their_own_evaluation_books(
    planted: Path, truths: list[ReaderTruth], make_settings
) -> None:
    settings = make_settings()
    catalog = Catalog.open(planted / "meta_Books.jsonl", SkipLog())
    try:
        plan = swap_plan(truths, catalog, settings, seed=9, books_per_reader=2)
        pool = EvaluationPool(catalog, settings.evaluation)
        partner = derangement([t.user_id for t in truths], 9)
        assert len(plan) == 2 * len(truths)
        for reader, other, book in plan:
            assert other.user_id == partner[reader.user_id] != reader.user_id
            own_books = [b.parent_asin for b in pool.targets(truth_profile(reader), 2)]
            assert book.parent_asin in own_books
            assert book.genre in reader.genres  # evaluation books come from the reader's genres
        assert len({(r.user_id, b.parent_asin) for r, _, b in plan}) == len(plan)
        with pytest.raises(InvalidInput, match="two planted readers"):
            swap_plan(truths[:1], catalog, settings, seed=9)
        with pytest.raises(InvalidInput) as err:
            swap_plan(truths, catalog, settings, seed=9, books_per_reader=0)
        assert err.value.field == "--books-per-reader"
    finally:
        catalog.close()


def test_the_persona_is_the_planted_truth(truths: list[ReaderTruth]) -> None:
    truth = truths[0]
    persona = persona_of(truth)
    d = truth.demographics
    assert (persona.user_id, persona.age_group, persona.gender, persona.country) == (
        truth.user_id,
        d.age_group,
        d.gender,
        d.country,
    )
    assert all(genre in persona.user_summary for genre in truth.genres)


@pytest.mark.model
def test_the_judge_is_asked_both_orders(truths: list[ReaderTruth], embedded_llm) -> None:
    from gravity_judge.judging import Judge

    units = [
        SwapUnit(
            t.user_id,
            truths[(k + 1) % 3].user_id,
            "B1",
            "A Book",
            names.USER_SUMMARY,
            "Own text.",
            "Other text.",
        )
        for k, t in enumerate(truths[:2])
    ]
    report = judge_swaps(Judge(embedded_llm), units, truths, "embedded:test")
    data = report.to_dict()
    assert data["units"] == 2 and data["judge"] == "embedded:test" and data["method"] == names.USER_SUMMARY
    for outcome in report.outcomes:
        j = outcome.judgment
        assert (j.a, j.b) == (OWN, OTHER)
        assert len(j.answers) == 2  # own shown first, then other shown first
    assert data["own_wins"] + data["other_wins"] + data["ties"] == data["usable"]
    if data["usable"]:
        low, high = data["swap_rate_ci"]
        assert low <= data["swap_rate"] <= high


def test_the_gravity_method_needs_the_adapter(
    planted: Path, truths: list[ReaderTruth], make_settings
) -> None:
    with pytest.raises(InvalidInput) as err:
        write_descriptions(
            make_settings(), [], planted / "meta_Books.jsonl", names.GRAVITY, 8, planted / "none"
        )
    assert err.value.field == "--adapter"


@pytest.mark.model
def test_the_generator_writes_both_descriptions(
    planted: Path, truths: list[ReaderTruth], make_settings
) -> None:
    settings = make_settings()
    catalog = Catalog.open(planted / "meta_Books.jsonl", SkipLog())
    try:
        plan = swap_plan(truths[:2], catalog, settings, seed=9, books_per_reader=1)
    finally:
        catalog.close()
    units, missing = write_descriptions(settings, plan, planted / "meta_Books.jsonl", names.USER_SUMMARY, 12)
    assert not missing
    assert [(u.reader, u.other, u.parent_asin) for u in units] == [
        (r.user_id, o.user_id, b.parent_asin) for r, o, b in plan
    ]
    assert all(u.own_text.strip() and u.other_text.strip() for u in units)
