"""Planted files round-trip and match the truth: the reviews parse with gravity_core.amazon, every expressed
statement, trait marker and cue is in the review that records it, nothing unexpressed is anywhere, the
withheld demographics are empty cells, and the profiler's own genre counting finds exactly the planted
favourites."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gravity_core.amazon import iter_reviews, read_demographics
from gravity_core.catalog import Catalog
from gravity_core.errors import InvalidInput
from gravity_core.skips import SkipLog
from gravity_core.values import load_seed_statements, statements_by_id
from gravity_fidelity import phrasing
from gravity_fidelity.plant import DEMOGRAPHICS_FILE, REVIEWS_FILE, PlantOptions, plant, reader_id
from gravity_fidelity.truth import TRUTH_FILE, read_manifest, read_truths, truth_profile
from gravity_profiler.inputs import sort_recent_first
from gravity_profiler.interests import interests
from gravity_profiler.personality import mini_ipip_items


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("planted") / "readers"
    plant(PlantOptions(readers=4, seed=7, withhold=2), out)
    return out


def _reviews_by_user(directory: Path) -> dict[str, list]:
    skips = SkipLog()
    out: dict[str, list] = {}
    for _, review in iter_reviews(directory / REVIEWS_FILE, skips):
        out.setdefault(review.user_id, []).append(review)
    assert skips.total == 0, skips.summary_lines()
    return out


def test_files_round_trip(planted: Path) -> None:
    truths = read_truths(planted)
    manifest = read_manifest(planted)
    assert len(truths) == manifest.readers == 4
    assert set(manifest.files) == {REVIEWS_FILE, DEMOGRAPHICS_FILE, "meta_Books.jsonl", TRUTH_FILE}
    reviews = _reviews_by_user(planted)
    assert set(reviews) == {t.user_id for t in truths}
    for truth in truths:
        assert [r.parent_asin for r in reviews[truth.user_id]] == [r.parent_asin for r in truth.reviews]
        assert len(truth.stances) == 150 and set(truth.stances.values()) <= set(phrasing.STANCES)
        assert set(truth.traits) == {
            "openness",
            "conscientiousness",
            "extraversion",
            "agreeableness",
            "neuroticism",
        }
        assert truth.user_id == reader_id(7, truths.index(truth))


def test_every_expressed_statement_is_in_its_review_and_nothing_else_is(planted: Path) -> None:
    bank = statements_by_id()
    reviews = _reviews_by_user(planted)
    for truth in read_truths(planted):
        texts = [r.text.lower() for r in reviews[truth.user_id]]
        recorded = [sid for r in truth.reviews for sid in r.statements]
        assert sorted(recorded) == sorted(truth.expressed.statements)
        for review, text in zip(truth.reviews, texts, strict=True):
            for sid in review.statements:
                assert phrasing.statement_core(bank[sid].text).lower() in text
        everything = " ".join(texts)
        for sid in set(bank) - set(truth.expressed.statements):
            assert phrasing.statement_core(bank[sid].text).lower() not in everything, sid


def test_expressed_statements_follow_the_requested_mix(planted: Path) -> None:
    for truth in read_truths(planted):
        stances = [truth.stances[s] for s in truth.expressed.statements]
        assert len(stances) == 12
        assert stances.count("neutral") == round(12 * 0.2)
        assert abs(stances.count("support") - stances.count("oppose")) <= 1
        assert all(truth.stances[s] != "neutral" for s in truth.summary_statements)
        assert (
            truth.expected_stance(truth.expressed.statements[0])
            == truth.stances[truth.expressed.statements[0]]
        )


def test_trait_markers_and_cues_are_in_their_reviews(planted: Path) -> None:
    items = {i.id: i for i in mini_ipip_items()}
    markers = phrasing.trait_markers()
    reviews = _reviews_by_user(planted)
    for truth in read_truths(planted):
        texts = [r.text for r in reviews[truth.user_id]]
        letter_of = {
            "openness": "O",
            "conscientiousness": "C",
            "extraversion": "E",
            "agreeableness": "A",
            "neuroticism": "N",
        }
        for trait, ids in truth.expressed.traits.items():
            assert len(ids) == 2 and all(items[i].trait == letter_of[trait] for i in ids)
        for review, text in zip(truth.reviews, texts, strict=True):
            for item_id in review.items:
                item = items[item_id]
                trait = next(t for t, ids in truth.expressed.traits.items() if item_id in ids)
                side = "agree" if phrasing.agrees(item, truth.traits[trait]) else "disagree"
                assert any(s in text for s in markers[item_id][side])
                assert not any(
                    s in text for s in markers[item_id]["disagree" if side == "agree" else "agree"]
                )
            for field in review.demographics:
                assert any(
                    c in text for c in phrasing.DEMOGRAPHIC_CUES[field][truth.demographics.value(field)]
                )
        assert sorted(f for r in truth.reviews for f in r.demographics) == sorted(phrasing.DEMOGRAPHIC_FIELDS)


def test_reviews_fit_what_the_profiler_reads(planted: Path) -> None:
    limit = PlantOptions().max_review_chars
    for reviews in _reviews_by_user(planted).values():
        assert all(len(r.text) <= limit for r in reviews)


def test_withheld_demographics_are_empty_cells(planted: Path) -> None:
    given = read_demographics(planted / DEMOGRAPHICS_FILE, SkipLog())
    with open(planted / DEMOGRAPHICS_FILE, encoding="utf-8") as f:
        rows = {r["user_id"]: r for r in csv.DictReader(f)}
    for truth in read_truths(planted):
        assert len(truth.withheld) == 2
        record = given[truth.user_id]
        d = truth.demographics
        assert (record.age_group, record.gender, record.country) == (
            "" if "age_group" in truth.withheld else d.age_group,
            "" if "gender" in truth.withheld else d.gender,
            "" if "country" in truth.withheld else d.country,
        )
        if "age_group" not in truth.withheld:
            assert rows[truth.user_id]["age"] == str(d.age)


def test_the_profilers_genre_counting_finds_the_planted_favourites(planted: Path) -> None:
    catalog = Catalog.open(planted / "meta_Books.jsonl", SkipLog())
    reviews = _reviews_by_user(planted)
    for truth in read_truths(planted):
        mine = sort_recent_first(reviews[truth.user_id])
        books = catalog.get_many(r.parent_asin for r in mine)
        found = {i.genre for i in interests(mine, books, PlantOptions().interest_threshold)}
        assert found == set(truth.genres)
    catalog.close()


def test_the_same_seed_gives_the_same_bytes_and_readers_do_not_depend_on_n(tmp_path: Path) -> None:
    plant(PlantOptions(readers=2, seed=5), tmp_path / "a")
    plant(PlantOptions(readers=2, seed=5), tmp_path / "b")
    plant(PlantOptions(readers=3, seed=5), tmp_path / "c")
    plant(PlantOptions(readers=2, seed=6), tmp_path / "d")
    for name in (REVIEWS_FILE, DEMOGRAPHICS_FILE, TRUTH_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert read_truths(tmp_path / "c")[:2] == read_truths(tmp_path / "a")
    assert read_truths(tmp_path / "d")[0] != read_truths(tmp_path / "a")[0]


def test_replanting_replaces_the_directory_but_refuses_a_foreign_one(tmp_path: Path) -> None:
    plant(PlantOptions(readers=2), tmp_path / "p")
    plant(PlantOptions(readers=3), tmp_path / "p")
    assert len(read_truths(tmp_path / "p")) == 3
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="--out"):
        plant(PlantOptions(readers=2), tmp_path / "other")


@pytest.mark.parametrize(
    ("options", "option"),
    [
        (PlantOptions(readers=0), "--readers"),
        (PlantOptions(items_per_trait=5), "--items-per-trait"),
        (PlantOptions(summary_statements=7), "--summary-statements"),
        (PlantOptions(withhold=4), "--withhold"),
        (PlantOptions(books_per_genre=1, other_reviews=8), "--books-per-genre"),
        (PlantOptions(statements_per_reader=150), "--statements-per-reader"),
    ],
)
def test_bad_options_name_the_option(tmp_path: Path, options: PlantOptions, option: str) -> None:
    with pytest.raises(InvalidInput) as err:
        plant(options, tmp_path / "x")
    assert err.value.field == option


def test_every_statement_and_stance_can_be_planted_verbatim() -> None:
    import random

    rng = random.Random(0)
    for statement in load_seed_statements():
        for stance in phrasing.STANCES:
            sentence = phrasing.stance_sentence(statement.text, stance, rng)
            assert phrasing.statement_core(statement.text).lower() in sentence.lower()


def test_every_mini_ipip_item_has_markers_both_ways() -> None:
    markers = phrasing.trait_markers()
    assert set(markers) == {i.id for i in mini_ipip_items()}
    for item in mini_ipip_items():
        assert phrasing.agrees(item, "high") != item.reverse
        assert markers[item.id]["agree"] and markers[item.id]["disagree"]


def test_truth_profile_is_what_a_perfect_profiler_would_write(planted: Path) -> None:
    from gravity.v1 import profile_pb2
    from gravity_core.prompts import gravity_preamble, traits_text

    truth = read_truths(planted)[0]
    profile = truth_profile(truth, "cohort")
    assert len(profile.values) == 150
    assert {v.statement_id: v.stance for v in profile.values}[
        truth.expressed.statements[0]
    ] != profile_pb2.STANCE_UNSPECIFIED
    assert {i.genre for i in profile.interests} == set(truth.genres)
    assert profile.demographics.country.value == truth.demographics.country
    assert len(truth.summary_statements) == 6
    assert profile.value_summary.count(".") >= 6
    preamble = gravity_preamble(profile)
    assert traits_text(profile) in preamble and profile.value_summary in preamble
    assert truth.genres[0] in profile.user_summary
