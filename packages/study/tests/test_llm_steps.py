"""The study's LLM steps on the real embedded SmolLM2 (no quality assertions): the annotator infers stances
with the paper's prompt read from choice log-probabilities, and the author writes a participant's summaries.
How answers are read (log-probabilities, parsed text, unreadable) is tested on constructed scores."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from gravity.v1 import profile_pb2
from gravity_core.catalog import Catalog
from gravity_core.llm import ChoiceScores
from gravity_study import profiles
from gravity_study.inference import PROMPT_HEAD, infer_stances, prompt_prefix, question, read
from gravity_study.instruments import STANCE_LABELS, UNREADABLE, ipip_items, statements

T = TypeVar("T")


def off_main_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Torch from a worker thread, as the app's job thread runs it (the main thread is far slower on a busy CPU)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def test_answers_are_read_from_logprobs_parsed_text_or_recorded_unreadable() -> None:
    logprobs = read(ChoiceScores((" agree", " disagree", " neutral"), (0.2, 0.7, 0.1), "logprobs"))
    assert (logprobs.label, logprobs.confidence, logprobs.method) == ("disagree", 0.7, "logprobs")
    parsed = read(
        ChoiceScores(("agree", "disagree", "neutral"), (0.0, 0.0, 1.0), "parsed", raw_text="Neutral.")
    )
    assert (parsed.label, parsed.confidence) == ("neutral", None)  # a parsed label has no probability
    unreadable = read(ChoiceScores.unusable(("agree", "disagree", "neutral"), "I would rather not say"))
    assert (unreadable.label, unreadable.confidence) == (UNREADABLE, None)


def test_the_prompt_is_the_papers() -> None:
    bank = statements()
    (a, b), target = list(bank.values())[:2], list(bank.values())[2]
    text = prompt_prefix([(a, "agree"), (b, "neutral")]) + question(target, embedded=False)
    assert text.startswith(PROMPT_HEAD)
    assert f'"{a.text}" -> agree' in text and f'"{b.text}" -> neutral' in text
    assert f'would the user agree, disagree, or be neutral to this statement: "{target.text}"?' in text


def test_unreadable_inferences_become_stance_unreadable_in_the_profile(sample_files: dict[str, Any]) -> None:
    bank = statements()
    ids = list(bank)
    answers = profiles.Answers(
        "p-1",
        "young",
        "female",
        "India",
        ("Romance", "Young Adult", "Children's Books"),
        {i.id: 3 for i in ipip_items()},
        {ids[0]: "agree"},
        {
            ids[1]: {"label": UNREADABLE, "confidence": None, "method": "parsed"},
            ids[2]: {"label": "disagree", "confidence": 0.8, "method": "logprobs"},
        },
    )
    catalog = Catalog.open(sample_files["meta_Books.jsonl"])
    d = profiles.draft(answers, catalog, 0.5, 24, 6, {"source": "test"})
    by_id = {v.statement_id: v for v in d.profile.values}
    assert by_id[ids[0]].stance == profile_pb2.STANCE_SUPPORT and by_id[ids[0]].confidence == 1.0
    assert by_id[ids[1]].stance == profile_pb2.STANCE_UNREADABLE and not by_id[ids[1]].HasField("confidence")
    assert by_id[ids[2]].stance == profile_pb2.STANCE_OPPOSE
    assert d.profile.evidence.unreadable_stances == 1
    # Children's Books has no book in the sample catalog: it contributes no interest genre
    genres = {i.genre for i in d.profile.interests}
    assert genres and all(catalog.top_rated(g, 1) for g in genres)
    assert {i.genre_group for i in d.profile.interests} == {"Romance", "Teen & Young Adult"}
    assert d.supported == [bank[ids[0]].text] and d.opposed == [bank[ids[2]].text]


@pytest.mark.model
def test_embedded_annotator_infers_the_other_statements(embedded_llm: Any) -> None:
    bank = statements()
    ids = list(bank)
    annotated = {sid: STANCE_LABELS[k % 3] for k, sid in enumerate(ids[:10])}
    subset = {
        sid: bank[sid] for sid in ids[:22]
    }  # 12 to infer keeps the test short; the code path is the 140's
    inferred = off_main_thread(infer_stances, embedded_llm, annotated, subset)
    assert set(inferred) == set(ids[10:22])
    for x in inferred.values():
        assert x.label in (*STANCE_LABELS, UNREADABLE)
        assert x.method == "logprobs" and x.confidence is not None and 0.0 < x.confidence <= 1.0


@pytest.mark.model
def test_embedded_author_writes_the_participants_summaries(
    embedded_llm: Any, sample_files: dict[str, Any]
) -> None:
    bank = statements()
    ids = list(bank)
    answers = profiles.Answers(
        "p-2",
        "senior",
        "male",
        "Brazil",
        ("Fiction", "History / Politics / Current Affairs", "Romance"),
        {i.id: 4 for i in ipip_items()},
        {sid: "agree" for sid in ids[:10]},
        {sid: {"label": "neutral", "confidence": 0.5, "method": "logprobs"} for sid in ids[10:]},
    )
    d = profiles.draft(
        answers, Catalog.open(sample_files["meta_Books.jsonl"]), 0.5, 24, 6, {"source": "test"}
    )
    (profile,) = off_main_thread(profiles.write_summaries, [d], embedded_llm, max_tokens=48, max_sentences=6)
    assert (
        profile.value_summary.strip()
    )  # the author's text, or the documented fallback when it wrote nothing
    assert profile.revision and profile.user_id == "p-2" and len(profile.values) == 150
    assert profiles.for_cohort(profile, "c-1", 3, 5).cohort_size == 3


@pytest.mark.model
def test_both_judges_rank_and_rate_a_screen_with_the_participants_persona(
    embedded_llm: Any, make_settings: Callable[..., Any]
) -> None:
    """The in-process judge and the judge service over gRPC (real server on 127.0.0.1, SmolLM2)."""
    from gravity_core.service import start_in_thread
    from gravity_judge.judging import Candidate
    from gravity_judge.persona import Persona
    from gravity_judge.service import JudgeService
    from gravity_study.judging import EmbeddedJudge, ServiceJudge
    from gravity_study.settings import study_settings

    settings = make_settings(**{"study.judge_orders": 2})
    cfg = study_settings(settings)
    persona = Persona("p-3", "young", "female", "India", "A reader who loves family stories.")
    candidates = [
        Candidate("original", "A quiet novel about a family bakery in Pune."),
        Candidate("gravity", "Three generations, one bakery, and the recipe that holds a family together."),
        Candidate("tri-agent", "Flour, secrets and second chances in a Pune bakery."),
    ]
    running = start_in_thread(JudgeService(settings, llm=embedded_llm), settings, port=0, poll_s=0.1)
    try:
        settings.grpc.targets["judge"] = running.target
        verdicts = [
            off_main_thread(EmbeddedJudge(settings, cfg).judge, persona, candidates, "screen-1"),
            off_main_thread(ServiceJudge(settings, cfg).judge, persona, candidates, "screen-1"),
        ]
    finally:
        running.stop()
    for verdict in verdicts:
        assert verdict.usable, verdict.reason
        assert sorted(verdict.ranking) == ["gravity", "original", "tri-agent"]
        assert set(verdict.ratings) == {"gravity", "original", "tri-agent"}
        assert all(1.0 <= r <= 5.0 for r in verdict.ratings.values())
        assert sum(verdict.first_place.values()) == pytest.approx(1.0, abs=1e-3)
