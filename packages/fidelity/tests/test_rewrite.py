"""The --author-llm pass: only the book talk changes, a rewrite that would express something the truth does
not record is refused, and with the real author model every planted sentence stays verbatim in its review."""

from __future__ import annotations

from pathlib import Path

import pytest

from gravity_core.amazon import iter_reviews
from gravity_core.skips import SkipLog
from gravity_core.values import load_seed_statements, statements_by_id
from gravity_fidelity import phrasing
from gravity_fidelity.plant import REVIEWS_FILE, PlantOptions, plant
from gravity_fidelity.rewrite import MAX_CHARS, rewrite_book_talk, usable_book_talk
from gravity_fidelity.truth import read_manifest, read_truths

CORES = [phrasing.statement_core(s.text).lower() for s in load_seed_statements()]


def test_two_clean_sentences_are_kept() -> None:
    assert usable_book_talk("A tense thriller. The ending lands!  Extra third sentence.", CORES) == [
        "A tense thriller.",
        "The ending lands!",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "No full stop at the end",
        "x" * (MAX_CHARS + 1) + ".",
        "<think>plan</think> A fine book.",
        f"A fine book. {load_seed_statements()[0].text}",  # it would express a statement the truth does not record
    ],
)
def test_unusable_rewrites_are_refused(text: str) -> None:
    assert usable_book_talk(text, CORES) is None


@pytest.mark.model
def test_the_author_llm_rewrites_book_talk_and_nothing_else(tmp_path: Path, embedded_llm) -> None:
    options = PlantOptions(
        readers=1, seed=3, statements_per_reader=2, items_per_trait=1, min_genres=2, max_genres=2,
        books_per_genre=2, other_reviews=0,
    )  # fmt: skip
    out = tmp_path / "planted"
    plant(options, out, rewriter=lambda drafts: rewrite_book_talk(embedded_llm, drafts, max_tokens=40))
    manifest = read_manifest(out)
    truth = read_truths(out)[0]
    assert manifest.rewritten + manifest.rewrites_refused == len(truth.reviews) == 4
    assert sum(r.rewritten for r in truth.reviews) == manifest.rewritten
    bank = statements_by_id()
    reviews = [r for _, r in iter_reviews(out / REVIEWS_FILE, SkipLog())]
    for planted, review in zip(truth.reviews, reviews, strict=True):
        for sid in planted.statements:
            assert phrasing.statement_core(bank[sid].text).lower() in review.text.lower()
        for field in planted.demographics:
            cues = phrasing.DEMOGRAPHIC_CUES[field][truth.demographics.value(field)]
            assert any(c in review.text for c in cues)
    expressed = set(truth.expressed.statements)
    everything = " ".join(r.text.lower() for r in reviews)
    assert not any(phrasing.statement_core(bank[s].text).lower() in everything for s in set(bank) - expressed)
