"""The judge's questions and answer handling with a scripted model (fast), and on the real SmolLM2."""

from __future__ import annotations

import random

import pytest
from judge_fixtures import VIVID, ScriptedJudge, described

from gravity_core.errors import InvalidInput
from gravity_judge.judging import Candidate, Judge, presentation_orders
from gravity_judge.persona import Persona
from gravity_judge.questions import clean, read_letter, read_rating
from gravity_judge.settings import JudgeSettings

READER = Persona("u1", "senior", "female", "Japan", "She reads cozy mysteries on the train")
CANDIDATES = [
    Candidate("original", "A lighthouse keeper keeps a diary."),
    Candidate("base-rewrite", "A lighthouse keeper keeps a diary by the sea."),
    Candidate("gravity", f"A {VIVID} diary of a lighthouse keeper and her village."),
    Candidate("lamp", "A diary, a lighthouse, a keeper."),
]


def test_persona_line_follows_d3() -> None:
    assert READER.text() == "You are a senior female from Japan. She reads cozy mysteries on the train."
    assert Persona("u2").text() == "You are a reader of unknown age person from an unknown country."


def test_presentation_orders_rotate_so_each_order_shows_a_different_first() -> None:
    orders = presentation_orders(9, 3, random.Random(1))
    assert len(orders) == 3 and all(sorted(o) == list(range(9)) for o in orders)
    assert len({o[0] for o in orders}) == 3
    many = presentation_orders(3, 5, random.Random(1))
    assert len(many) == 5 and len({o[0] for o in many[:3]}) == 3


def test_content_judge_wins_in_every_order(scripted: ScriptedJudge) -> None:
    judge = Judge(scripted, JudgeSettings(orders=4))
    r = judge.rank(READER, CANDIDATES)
    assert r.usable and r.winners == ["gravity"] and r.ranking[0] == "gravity"
    assert r.order_agreement == 1.0 and r.orders_used == 4
    assert sum(r.first_place.values()) == pytest.approx(1.0)
    shown_first = [described(p)["A"] for p in scripted.prompts]
    assert len(set(shown_first)) == 4  # four orders, four different descriptions in slot A
    assert all(p.startswith(READER.text()) for p in scripted.prompts)


def test_position_biased_judge_is_caught(scripted: ScriptedJudge) -> None:
    biased = Judge(ScriptedJudge(mode="position"), JudgeSettings(orders=4))
    r = biased.rank(READER, CANDIDATES)
    assert r.first_position_picks == 4
    assert r.order_agreement == pytest.approx(0.25)  # each order crowned a different description
    (pair,) = biased.compare(READER, CANDIDATES[0], [CANDIDATES[2]])
    assert pair.position_biased and not pair.orders_agree
    assert pair.probability_a == pytest.approx(0.5) and pair.outcome == "tie"


def test_compare_and_rate_read_content(scripted: ScriptedJudge) -> None:
    judge = Judge(scripted)
    pairs = judge.compare(READER, CANDIDATES[0], CANDIDATES[1:])
    by_method = {p.b: p for p in pairs}
    assert by_method["gravity"].outcome == "b" and by_method["gravity"].preferred == "gravity"
    assert not by_method["gravity"].position_biased
    assert by_method["base-rewrite"].outcome == "tie" and by_method["base-rewrite"].position_biased
    ratings = {r.id: r for r in judge.rate(READER, CANDIDATES)}
    assert ratings["gravity"].score == pytest.approx(0.025 * (1 + 2 + 3 + 4) + 0.9 * 5)
    assert ratings["original"].score < 2.5
    # the original is description A in every A/B question, so those share a prefix
    ab = [
        p
        for p in scripted.prompts
        if "Answer with A or B" in p and described(p).get("A") == CANDIDATES[0].text
    ]
    assert len(ab) == 3


def test_rank_rejects_bad_candidate_counts(scripted: ScriptedJudge) -> None:
    with pytest.raises(InvalidInput):
        Judge(scripted).rank(READER, CANDIDATES[:1])


def test_text_mode_parses_answers_and_counts_unreadable() -> None:
    answers = iter(["Description C is the best.", "I like them all!", "C"])
    judge = Judge(
        ScriptedJudge(text_answer=lambda _p: next(answers)), JudgeSettings(answer_mode="text", orders=3)
    )
    r = judge.rank(READER, CANDIDATES[:3])
    assert r.usable and r.orders_used == 2 and r.answer_methods == ["parsed", "parsed"]
    unreadable = Judge(
        ScriptedJudge(text_answer=lambda _p: "Hmm, hard to say."), JudgeSettings(answer_mode="text")
    )
    (rating,) = unreadable.rate(READER, CANDIDATES[:1])
    assert (
        not rating.usable
        and rating.reason == "unreadable_answer"
        and rating.raw_answer == "Hmm, hard to say."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Description B", "B"),
        ("description c, because it is vivid", "C"),
        ("B", "B"),
        ("(A) is more engaging", "A"),
        ("Option: D", "D"),
        ("Answer: Z", None),
        ("The first one is nicer.", None),
        ("a lovely description", None),
    ],
)
def test_read_letter(text: str, expected: str | None) -> None:
    assert read_letter(text, ("A", "B", "C", "D")) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", "4"),
        ("I would rate it 5/5.", "5"),
        ("Rating: 3 out of 5", "3"),
        ("10 out of 10", None),
        ("4.5", None),
        ("none", None),
    ],
)
def test_read_rating(text: str, expected: str | None) -> None:
    assert read_rating(text) == expected


def test_clean_cuts_long_descriptions_at_a_word() -> None:
    text, cut = clean("word " * 100, 203)
    assert cut and text.endswith(" …") and len(text) <= 205
    assert clean("a\n\nb  c", 200) == ("a b c", False)


@pytest.mark.model
def test_real_judge_scores_every_question(embedded_llm) -> None:
    """SmolLM2 answers through log-probabilities: every judgment usable and a proper distribution."""
    judge = Judge(embedded_llm, JudgeSettings(orders=2))
    short = [Candidate(c.id, c.text.replace(VIVID, "vivid")) for c in CANDIDATES[:3]]
    r = judge.rank(READER, short)
    assert r.usable and r.orders_used == 2 and set(r.ranking) == {c.id for c in short}
    assert sum(r.first_place.values()) == pytest.approx(1.0, abs=1e-4)
    assert r.answer_methods == ["logprobs", "logprobs"]
    pairs = judge.compare(READER, short[0], short[1:])
    assert all(p.usable and 0.0 < p.probability_a < 1.0 for p in pairs)
    ratings = judge.rate(READER, short)
    assert all(
        r.usable and 1.0 <= r.score <= 5.0 and sum(r.distribution) == pytest.approx(1.0, abs=1e-4)
        for r in ratings
    )
