"""Fast unit tests of the profiler's pure logic: parsing, scoring rules, caps, validation, the queue."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.amazon import BookRecord, ReviewRecord
from gravity_core.artifacts import ArtifactStore
from gravity_core.errors import InvalidInput
from gravity_core.llm import ChoiceScores
from gravity_core.values import load_seed_statements
from gravity_profiler import prompts
from gravity_profiler.inputs import UserInput, from_request
from gravity_profiler.interests import interests
from gravity_profiler.personality import mini_ipip_items, score_ipip, trait_scores
from gravity_profiler.settings import ClassifierSettings, ProfilerSettings
from gravity_profiler.stances import outcome, parse_numbered_answers
from gravity_profiler.store import ProfilerStore, user_key
from gravity_profiler.summaries import clean_summary, fallback_value_summary


def _review(asin: str, ts: int, text: str = "Lovely book.", user: str = "U1") -> ReviewRecord:
    return ReviewRecord(user, asin, asin, 5.0, "t", text, ts)


def _book(asin: str, genre: str | None, group: str = "Literature & Fiction") -> BookRecord:
    path = ["Books", group, genre] if genre else ["Books"]
    return BookRecord(asin, f"Title {asin}", "desc", path)


def test_interests_hold_at_least_the_threshold_share_sorted_by_share() -> None:
    books = {
        f"B{i}": _book(f"B{i}", g)
        for i, g in enumerate(["Poetry"] * 5 + ["Cozy"] * 2 + ["Memoirs"] + [None] * 12)
    }
    reviews = [_review(a, i) for i, a in enumerate(books)]
    got = interests(reviews, books, 0.10)
    # 5/20 and exactly 2/20 = 10% qualify; 1/20 does not; genre-less reviews still count in the denominator
    assert [(i.genre, i.review_count, round(i.share, 3)) for i in got] == [
        ("Poetry", 5, 0.25),
        ("Cozy", 2, 0.1),
    ]
    assert all(i.genre_group == "Literature & Fiction" for i in got)
    assert interests([], {}, 0.1) == []


def test_stance_labels_map_to_the_proto_and_unusable_answers_to_neutral() -> None:
    st = load_seed_statements()[0]
    choices = prompts.STANCE_CHOICES
    assert outcome(st, ChoiceScores(choices, (0.1, 0.7, 0.2), "logprobs")).stance == profile_pb2.STANCE_OPPOSE
    assert (
        outcome(st, ChoiceScores(choices, (0.6, 0.1, 0.3), "logprobs")).stance == profile_pb2.STANCE_SUPPORT
    )
    supported = outcome(st, ChoiceScores(choices, (0.6, 0.1, 0.3), "logprobs"))
    assert supported.confidence == pytest.approx(0.6) and supported.usable
    bad = outcome(st, ChoiceScores.unusable(choices, "perhaps"))
    assert (bad.stance, bad.confidence, bad.usable) == (profile_pb2.STANCE_NEUTRAL, 0.0, False)
    proto = supported.to_proto()
    assert (proto.statement_id, proto.statement, proto.framework, proto.topic) == (
        st.id,
        st.text,
        st.framework,
        st.topic,
    )


def test_numbered_answers_parse_the_allowed_labels_only() -> None:
    text = "Sure!\n1: support\n2. No support\n3 - neutral\nStatement 4: it depends\n5) NO SUPPORT\n9: support\n1: neutral"
    assert parse_numbered_answers(text, 5) == {1: "support", 2: "no support", 3: "neutral", 5: "no support"}


def test_mini_ipip_reverses_reverse_keyed_items() -> None:
    items = mini_ipip_items()
    assert len(items) == 20 and sum(i.reverse for i in items) == 11

    def answer(value: int) -> ChoiceScores:
        return ChoiceScores(
            prompts.IPIP_CHOICES,
            tuple(1.0 if c == str(value) else 0.0 for c in prompts.IPIP_CHOICES),
            "logprobs",
        )

    # agreeing with the keyed direction everywhere -> every trait at the top of the scale
    keyed = [answer(1 if i.reverse else 5) for i in items]
    scores, unusable = score_ipip(items, keyed)
    assert scores == {t: 1.0 for t in "OCEAN"} and unusable == 0
    # the same answer to every item cancels out for traits with two reversed items
    flat, _ = score_ipip(items, [answer(5)] * 20)
    assert flat["E"] == flat["A"] == flat["C"] == flat["N"] == pytest.approx(0.5)
    assert flat["O"] == pytest.approx(0.25)  # O has three reversed items
    # an unusable item counts as the midpoint
    broken = [ChoiceScores.unusable(prompts.IPIP_CHOICES, "?"), *keyed[1:]]
    scores, unusable = score_ipip(items, broken)
    assert unusable == 1 and scores["E"] == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    traits = trait_scores({"O": 0.5, "C": 0.49, "E": 1.0, "A": 0.0, "N": 0.7}, 0.5)
    assert [t.level for t in traits] == [
        profile_pb2.TRAIT_LEVEL_HIGH,
        profile_pb2.TRAIT_LEVEL_LOW,
        profile_pb2.TRAIT_LEVEL_HIGH,
        profile_pb2.TRAIT_LEVEL_LOW,
        profile_pb2.TRAIT_LEVEL_HIGH,
    ]
    assert not math.isnan(traits[0].score)


def test_summaries_are_one_paragraph_within_the_sentence_cap() -> None:
    text = "Summary: One. Two! Three? Four. Five.\n\nSix. Seven. Eight."
    assert clean_summary(text, 6) == "One. Two! Three? Four. Five. Six."
    assert clean_summary("First sentence. And a cut-off half", 6, cut_off=True) == "First sentence."
    assert clean_summary("Only a half", 6, cut_off=True) == "Only a half."
    listed = "The user's values are as follows:\n- Family first\n- Family first\n2. Faith matters."
    assert clean_summary(listed, 6) == "The user's values are as follows. Family first. Faith matters."
    assert clean_summary("   ", 6) == ""
    fallback = fallback_value_summary(["Family comes first."], ["Religion is always right."], 6)
    assert "Family comes first" in fallback and "Religion is always right" in fallback
    assert fallback_value_summary([], [], 6)


def test_review_context_keeps_the_most_recent_reviews_within_budget() -> None:
    books = {"A": _book("A", "Poetry"), "B": _book("B", "Poetry")}
    reviews = [_review("A", 2, "new " * 10), _review("B", 1, "old " * 10)]
    full = prompts.review_context(reviews, books, 10_000, 800)
    assert (
        not full.truncated and full.text.index("new") < full.text.index("old") and 'on "Title A"' in full.text
    )
    short = prompts.review_context(reviews, books, 80, 800)
    assert short.truncated and short.included == 1 and "old" not in short.text
    capped = prompts.review_context([_review("A", 1, "word " * 100)], books, 10_000, 60)
    assert capped.text.endswith("...") and len(capped.text) < 120


def test_build_request_validation_names_the_field() -> None:
    good = profile_pb2.BuildProfileRequest(
        user_id="U1",
        reviews=[_review("A", 5).to_proto(), _review("B", 9).to_proto(), _review("A", 7).to_proto()],
        books=[_book("A", "Poetry").to_proto()],
        demographics=common_pb2.Demographics(
            age=44,
            gender=common_pb2.DemographicField(value="F", provenance=common_pb2.PROVENANCE_GIVEN),
            country=common_pb2.DemographicField(value="Japan", provenance=common_pb2.PROVENANCE_ESTIMATED),
        ),
    )
    user, rejected = from_request(good)
    assert [r.timestamp_ms for r in user.reviews] == [9, 7]  # newest duplicate kept, newest first
    assert [reason for _, reason, _ in rejected] == ["duplicate_review"]
    d = user.demographics
    assert (d.age, d.age_group, d.gender, d.country) == (
        44,
        "middle-aged",
        "female",
        "",
    )  # estimated -> unknown
    for mutate, field in [
        (lambda r: r.ClearField("user_id"), "user_id"),
        (lambda r: setattr(r.reviews[0], "user_id", "someone-else"), "reviews[0].user_id"),
        (lambda r: setattr(r.reviews[1], "parent_asin", ""), "reviews[1].parent_asin"),
        (lambda r: setattr(r.reviews[0], "rating", 9), "reviews[0].rating"),
        (lambda r: setattr(r.demographics.gender, "value", "robot"), "demographics.gender.value"),
        (lambda r: setattr(r.demographics, "age", 300), "demographics.age"),
    ]:
        bad = profile_pb2.BuildProfileRequest()
        bad.CopyFrom(good)
        mutate(bad)
        with pytest.raises(InvalidInput) as info:
            from_request(bad)
        assert info.value.field == field


def test_user_input_round_trips_through_the_queue_format(tmp_path: Path) -> None:
    user = UserInput("U/1 ?", [_review("A", 2, user="U/1 ?")], {"A": _book("A", "Poetry")})
    request = user.to_request("cohort-x", 3)
    store = ProfilerStore(ArtifactStore(tmp_path))
    store.enqueue(request)
    [item] = store.pending()
    again, _ = from_request(store.load_pending(item))
    assert again.user_id == user.user_id and again.books["A"].genre == "Poetry"
    assert store.load_pending(item).cohort_size == 3
    moved = store.fail(item)
    assert moved.is_file() and store.pending() == []
    assert "/" not in user_key("a/b") and user_key("a/b") != user_key("a_b")


def test_settings_validate_their_values() -> None:
    with pytest.raises(ValueError):
        ClassifierSettings(label_order=["O", "C", "E", "A", "A"])
    assert ClassifierSettings(
        label_order=["neuroticism", "agreeableness", "extraversion", "conscientiousness", "openness"]
    ).label_order == list("NAECO")
    with pytest.raises(ValueError):
        ProfilerSettings(countries=[" "])
    with pytest.raises(ValueError):
        ProfilerSettings(protocol="all-at-once")


def test_batched_remote_strategy_parses_lines_and_reasks_the_rest() -> None:
    from profiler_fixtures import ScriptedLLM

    from gravity_profiler.stances import infer_stances

    remote = ScriptedLLM(summary="Here you go:\n1: no support\n2: support\n", backend="openai")
    statements = load_seed_statements()[:3]
    config = ProfilerSettings(remote_batch_size=3)
    scores = infer_stances(remote, "single\n", statements, "shared-prefix", config, "batched\n")
    assert [s.method for s in scores] == ["parsed", "parsed", "logprobs"]
    assert [outcome(st, s).stance for st, s in zip(statements[:2], scores, strict=False)] == [
        profile_pb2.STANCE_OPPOSE,
        profile_pb2.STANCE_SUPPORT,
    ]
    # one batched call listing all three, then the unanswered third statement alone
    assert remote.prompts[0].startswith("batched\n1. ") and statements[2].text in remote.prompts[0]
    assert remote.prompts[1] == "single\n" + statements[2].text and len(remote.prompts) == 2
    # the embedded backend, or vLLM's prefix cache, scores every statement against the shared context
    local = ScriptedLLM()
    infer_stances(local, "single\n", statements, "shared-prefix", config, "batched\n")
    assert local.prompts == ["single\n" + s.text for s in statements]
