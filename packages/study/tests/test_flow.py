"""The participant flow on a real SQLite database: every step's validation (nothing wrong is saved), resume
from what is saved, links and their tokens, and the jobs from answers to ranking screens (scripted LLM,
pipeline and judge: the real ones are tested in test_llm_steps.py and test_pipeline.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gravity.v1 import profile_pb2
from gravity_study import flow, studies
from gravity_study.flow import Step
from gravity_study.instruments import ipip_items
from gravity_study.jobs import load_profile, queue_after_submit
from gravity_study.models import Participant


def _p(db: Any, token: str) -> Participant:
    with db.session() as s:
        p = studies.participant_by_token(s, token)
        assert p is not None
        _ = p.study.countries, [screen.judgments for screen in p.screens]  # loaded before the session closes
        return p


def submit(db: Any, token: str, step: Step, form: dict[str, list[str]]) -> flow.Outcome:
    with db.session() as s:
        p = studies.participant_by_token(s, token)
        assert p is not None
        outcome = flow.submit(p, step, form)
        if outcome.ok:
            queue_after_submit(s, p)
        return outcome


def good(step: Step, study_values: list[str] | None = None) -> dict[str, list[str]]:
    if step is Step.CONSENT:
        return {"consent": ["yes"]}
    if step is Step.DEMOGRAPHICS:
        return {"age_group": ["young"], "gender": ["female"], "country": ["Japan"]}
    if step is Step.GENRES:
        return {"genre": ["Romance", "Young Adult", "Fiction"]}
    if step is Step.PERSONALITY:
        return {f"ipip_{i.id}": [str(1 + k % 5)] for k, i in enumerate(ipip_items())}
    if step is Step.VALUES:
        return {
            f"value_{sid}": [("agree", "disagree", "neutral")[k % 3]]
            for k, sid in enumerate(study_values or [])
        }
    raise AssertionError(step)


def test_links_are_unique_unguessable_and_unknown_tokens_find_nobody(db: Any, make_study: Any) -> None:
    _, tokens = make_study(5)
    assert len(set(tokens)) == 5
    assert all(len(t) >= 32 for t in tokens)
    with db.session() as s:
        assert (
            studies.participant_by_token(s, tokens[0][:-1] + ("A" if tokens[0][-1] != "A" else "B")) is None
        )
        assert studies.participant_by_token(s, "") is None
        assert studies.participant_by_token(s, "x" * 200) is None
        codes = {studies.participant_by_token(s, t).code for t in tokens}  # type: ignore[union-attr]
    assert len(codes) == 5 and not any(t in c for t in tokens for c in codes)


@pytest.mark.parametrize(
    ("step", "form", "field", "message"),
    [
        (Step.CONSENT, {}, "consent", "tick the box"),
        (
            Step.DEMOGRAPHICS,
            {"age_group": ["teen"], "gender": ["female"], "country": ["Japan"]},
            "age_group",
            "age group",
        ),
        (
            Step.DEMOGRAPHICS,
            {"age_group": ["young"], "gender": ["female"], "country": ["Atlantis"]},
            "country",
            "USA, Japan",
        ),
        (Step.GENRES, {"genre": ["Romance", "Fiction"]}, "genre", "exactly 3 categories (you chose 2)"),
        (Step.GENRES, {"genre": ["Romance", "Fiction", "Cooking"]}, "genre", "Unknown category: Cooking"),
    ],
)
def test_invalid_answers_name_the_field_and_save_nothing(
    db: Any, make_study: Any, step: Step, form: dict[str, list[str]], field: str, message: str
) -> None:
    _, (token,) = make_study(1)
    for earlier in (Step.CONSENT, Step.DEMOGRAPHICS, Step.GENRES):
        if earlier is step:
            break
        assert submit(db, token, earlier, good(earlier)).ok
    before = _p(db, token)
    outcome = submit(db, token, step, form)
    assert not outcome.ok and message in outcome.errors[field]
    after = _p(db, token)
    assert flow.position(after).step is step
    assert (after.age_group, after.country, after.genres) == (before.age_group, before.country, before.genres)


def test_personality_needs_every_item_and_keeps_the_given_answers_for_the_form(
    db: Any, make_study: Any
) -> None:
    _, (token,) = make_study(1)
    for step in (Step.CONSENT, Step.DEMOGRAPHICS, Step.GENRES):
        submit(db, token, step, good(step))
    form = good(Step.PERSONALITY)
    first, second = ipip_items()[0].id, ipip_items()[1].id
    form[f"ipip_{first}"] = ["6"]
    del form[f"ipip_{second}"]
    outcome = submit(db, token, Step.PERSONALITY, form)
    assert set(outcome.errors) == {f"ipip_{first}", f"ipip_{second}", "_form"}
    assert "2 statement(s)" in outcome.errors["_form"]
    assert outcome.values[f"ipip_{ipip_items()[2].id}"] == form[f"ipip_{ipip_items()[2].id}"][0]
    p = _p(db, token)
    assert p.ipip == {} and p.personality_at_ms is None


def test_every_step_resumes_from_what_is_saved_and_ends_in_table4_inputs(
    db: Any, make_study: Any, scripted_runner: Any
) -> None:
    slug, (token,) = make_study(1, books=2)
    with db.session() as s:
        values = list(studies.study_by_slug(s, slug).value_statements)  # type: ignore[union-attr]
    assert len(values) == 10
    for step in (Step.CONSENT, Step.DEMOGRAPHICS, Step.GENRES, Step.PERSONALITY, Step.VALUES):
        assert flow.position(_p(db, token)).step is step  # a reload lands exactly here
        assert submit(db, token, step, good(step, values)).ok
    assert flow.position(_p(db, token)).step is Step.INFERRING
    assert scripted_runner.run_pending() == 1  # the values queued the inference
    p = _p(db, token)
    assert len(p.inferred) == 140 and not set(p.inferred) & set(values)
    assert flow.position(p).step is Step.VERIFY and len(p.verification_items) == 5
    bad = flow.submit_verification(p, {f"verify_{i['id']}": ["maybe"] for i in p.verification_items})
    assert len([k for k in bad.errors if k.startswith("verify_")]) == 5
    form = {f"verify_{i['id']}": ["yes" if k < 4 else "no"] for k, i in enumerate(p.verification_items)}
    assert submit(db, token, Step.VERIFY, form).ok
    assert scripted_runner.run_pending() == 1  # the profile
    p = _p(db, token)
    assert flow.position(p).step is Step.WAITING
    profile = load_profile(p)
    assert profile.user_id == p.code and profile.value_summary and profile.user_summary
    assert {i.genre for i in profile.interests} and len(profile.values) == 150
    assert profile.demographics.country.value == "Japan"
    assert [t.level != profile_pb2.TRAIT_LEVEL_UNSPECIFIED for t in profile.personality.traits] == [True] * 5

    with db.session() as s:
        study = studies.study_by_slug(s, slug)
        studies.enqueue(s, study, "train")  # type: ignore[arg-type]
        studies.enqueue(s, study, "train")  # type: ignore[arg-type]  # a double click queues it once
    assert scripted_runner.run_pending() == 1
    cohort = scripted_runner.pipeline.trained[0]
    assert cohort.cohort_id == f"study-{slug}-r1"
    assert [(x.cohort_id, x.cohort_size) for x in cohort.profiles] == [(cohort.cohort_id, 1)]
    with db.session() as s:
        studies.enqueue(s, studies.study_by_slug(s, slug), "generate")  # type: ignore[arg-type]
    scripted_runner.run_pending()
    p = _p(db, token)
    assert len(p.screens) == 2
    assert flow.position(p) == flow.Position(Step.RANK, 0)
    for screen in p.screens:
        assert sorted(screen.display_order) == sorted(["original", "gravity", "tri-agent"])
        assert set(screen.texts) == set(screen.display_order)


def test_ranking_screen_validation_and_save(db: Any, make_study: Any, scripted_runner: Any) -> None:
    slug, (token,) = make_study(1, books=1)
    with db.session() as s:
        values = list(studies.study_by_slug(s, slug).value_statements)  # type: ignore[union-attr]
    for step in (Step.CONSENT, Step.DEMOGRAPHICS, Step.GENRES, Step.PERSONALITY, Step.VALUES):
        submit(db, token, step, good(step, values))
    scripted_runner.run_pending()
    p = _p(db, token)
    submit(db, token, Step.VERIFY, {f"verify_{i['id']}": ["yes"] for i in p.verification_items})
    scripted_runner.run_pending()
    with db.session() as s:
        study = studies.study_by_slug(s, slug)
        studies.enqueue(s, study, "train")  # type: ignore[arg-type]
        studies.enqueue(s, study, "generate")  # type: ignore[arg-type]
    scripted_runner.run_pending()

    with db.session() as s:
        p = studies.participant_by_token(s, token)
        screen = p.screens[0]  # type: ignore[union-attr]
        dup = flow.submit_screen(
            p,
            screen,
            {
                "rank_1": ["1"],
                "rank_2": ["1"],
                "rank_3": ["2"],  # type: ignore[arg-type]
                "rate_1": ["5"],
                "rate_2": ["9"],
                "rate_3": ["3"],
                "like_1": ["99"],
            },
        )
        assert "different rank" in dup.errors["ranks"]
        assert dup.errors["rate_2"] == "Rate option 2 from 1 to 5."
        assert dup.errors["like_1"] == "Option 1 has no such sentence."
        assert screen.answered_at_ms is None and screen.ranks == {}
        ok = flow.submit_screen(
            p,
            screen,
            {
                "rank_1": ["2"],
                "rank_2": ["1"],
                "rank_3": ["3"],  # type: ignore[arg-type]
                "rate_1": ["4"],
                "rate_2": ["5"],
                "rate_3": ["2"],
                "like_2": ["0", "2"],
                "comment": ["Lovely <i>tone</i>"],
            },
        )
        assert ok.ok
        order = screen.display_order
        assert screen.ranks == {order[0]: 2, order[1]: 1, order[2]: 3}
        assert screen.liked == {order[1]: [0, 2]}
        assert flow.position(p).step is Step.DONE  # type: ignore[arg-type]
        assert p.ranking_done_at_ms is not None  # type: ignore[union-attr]


def test_study_creation_validates_every_field(db: Any) -> None:
    from gravity_core.errors import InvalidInput

    with db.session() as s:
        for kwargs, field in (
            ({"name": ""}, "name"),
            ({"slug": "Bad Slug"}, "slug"),
            ({"baselines": []}, "baselines"),
            ({"baselines": ["lamp"]}, "baselines"),
            ({"books": 0}, "books_per_participant"),
            ({"countries": [" "]}, "countries"),
        ):
            args = {"name": "n", "slug": "ok", "baselines": ["tri-agent"], "books": 10, "countries": ["USA"]}
            args.update(kwargs)
            with pytest.raises(InvalidInput) as info:
                studies.create_study(
                    s, args["name"], args["slug"], args["baselines"], args["books"], args["countries"], 1
                )
            assert info.value.field == field
        studies.create_study(s, "n", "ok", ["tri-agent"], 10, ["USA"], 1)
        with pytest.raises(InvalidInput, match="already exists"):
            studies.create_study(s, "n", "ok", ["tri-agent"], 10, ["USA"], 1)


def test_a_failed_job_is_reported_and_can_be_retried(db: Any, make_study: Any, scripted_runner: Any) -> None:
    slug, _ = make_study(1)
    with db.session() as s:
        studies.enqueue(s, studies.study_by_slug(s, slug), "train")  # type: ignore[arg-type]
    scripted_runner.run_pending()
    with db.session() as s:
        study = studies.study_by_slug(s, slug)
        (job,) = studies.jobs_of(s, study)  # type: ignore[arg-type]
        assert (job.state, job.message) == ("failed", "no participant has a profile yet")
        assert studies.retry_failed(s, study) == 1  # type: ignore[arg-type]
        assert job.state == "queued" and job.message.startswith("retried after: no participant")
