"""The participant flow (paper D.4, Figures 4-6): which step a participant is on, and each step's answers
validated and saved.

The current step is computed from what is saved, so a reload or a later visit with the same link resumes
exactly there. A submission is validated field by field; when anything is wrong nothing is saved and every
problem comes back with a message for its field. The web pages and the simulated participants of the demo
go through the same functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from gravity_study.instruments import (
    AGE_GROUPS,
    GENDERS,
    GENRES_TO_PICK,
    IPIP_SCALE,
    STANCE_LABELS,
    genre_options,
    ipip_items,
    sentences,
)
from gravity_study.models import Participant, Screen, Study, now_ms

Form = Mapping[str, Sequence[str]]
COMMENT_MAX_CHARS = 2000
PREFER_NOT_TO_SAY = "prefer-not-to-say"


class Step(StrEnum):
    CONSENT = "consent"
    DEMOGRAPHICS = "demographics"
    GENRES = "genres"
    PERSONALITY = "personality"
    VALUES = "values"
    INFERRING = "inferring"  # the annotator infers the other stances (background job)
    VERIFY = "verify"
    WAITING = "waiting"  # profile, training and descriptions (background jobs, the administrator)
    RANK = "rank"
    DONE = "done"


# The steps a participant answers, in order, for progress displays.
ANSWER_STEPS = (
    Step.CONSENT,
    Step.DEMOGRAPHICS,
    Step.GENRES,
    Step.PERSONALITY,
    Step.VALUES,
    Step.VERIFY,
    Step.RANK,
)


@dataclass(frozen=True)
class Position:
    step: Step
    screen: int = 0  # for RANK: the position of the first unanswered screen

    @property
    def path(self) -> str:
        return f"rank/{self.screen + 1}" if self.step is Step.RANK else self.step.value


def position(p: Participant) -> Position:
    if p.consent_at_ms is None:
        return Position(Step.CONSENT)
    if p.demographics_at_ms is None:
        return Position(Step.DEMOGRAPHICS)
    if p.genres_at_ms is None:
        return Position(Step.GENRES)
    if p.personality_at_ms is None:
        return Position(Step.PERSONALITY)
    if p.values_at_ms is None:
        return Position(Step.VALUES)
    if p.inferred_at_ms is None:
        return Position(Step.INFERRING)
    if p.verified_at_ms is None:
        return Position(Step.VERIFY)
    if not p.screens:
        return Position(Step.WAITING)
    for screen in p.screens:
        if screen.answered_at_ms is None:
            return Position(Step.RANK, screen.position)
    return Position(Step.DONE)


@dataclass
class Outcome:
    """Errors by field name (empty when saved) and the values to show again in the form."""

    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _one(form: Form, name: str) -> str:
    values = form.get(name) or []
    return values[0].strip() if values else ""


def _many(form: Form, name: str) -> list[str]:
    return [v.strip() for v in form.get(name) or [] if v.strip()]


def _int(text: str, low: int, high: int) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


# ------------------------------------------------------------------ steps
def submit_consent(p: Participant, form: Form) -> Outcome:
    if _one(form, "consent") != "yes":
        return Outcome(
            {
                "consent": "Please tick the box to give your consent, or close this page if you do not wish to take part."
            }
        )
    p.consent_at_ms = now_ms()
    return Outcome()


def submit_demographics(p: Participant, study: Study, form: Form) -> Outcome:
    age, gender, country = _one(form, "age_group"), _one(form, "gender"), _one(form, "country")
    out = Outcome(values={"age_group": age, "gender": gender, "country": country})
    if age not in {a for a, _ in AGE_GROUPS}:
        out.errors["age_group"] = "Choose your age group."
    genders = {g or PREFER_NOT_TO_SAY for g, _ in GENDERS}
    if gender not in genders:
        out.errors["gender"] = "Choose your gender, or “Prefer not to say”."
    if country not in study.countries:
        out.errors["country"] = f"Choose your country from the list ({', '.join(study.countries)})."
    if out.ok:
        p.age_group, p.country = age, country
        p.gender = "" if gender == PREFER_NOT_TO_SAY else gender
        p.demographics_at_ms = now_ms()
    return out


def submit_genres(p: Participant, form: Form) -> Outcome:
    chosen = list(dict.fromkeys(_many(form, "genre")))
    out = Outcome(values={"genre": chosen})
    unknown = [g for g in chosen if g not in genre_options()]
    if unknown:
        out.errors["genre"] = f"Unknown category: {unknown[0]}."
    elif len(chosen) != GENRES_TO_PICK:
        out.errors["genre"] = f"Choose exactly {GENRES_TO_PICK} categories (you chose {len(chosen)})."
    if out.ok:
        p.genres = chosen
        p.genres_at_ms = now_ms()
    return out


def submit_personality(p: Participant, form: Form) -> Outcome:
    answers: dict[str, int] = {}
    out = Outcome()
    high = max(v for v, _ in IPIP_SCALE)
    for item in ipip_items():
        raw = _one(form, f"ipip_{item.id}")
        out.values[f"ipip_{item.id}"] = raw
        value = _int(raw, 1, high)
        if value is None:
            out.errors[f"ipip_{item.id}"] = f"Rate this statement from 1 to {high}."
        else:
            answers[item.id] = value
    if out.errors:
        out.errors["_form"] = f"{len(out.errors)} statement(s) still need an answer from 1 to {high}."
        return out
    p.ipip = answers
    p.personality_at_ms = now_ms()
    return out


def submit_values(p: Participant, study: Study, form: Form) -> Outcome:
    answers: dict[str, str] = {}
    out = Outcome()
    for sid in study.value_statements:
        raw = _one(form, f"value_{sid}")
        out.values[f"value_{sid}"] = raw
        if raw not in STANCE_LABELS:
            out.errors[f"value_{sid}"] = "Choose agree, disagree or neutral."
        else:
            answers[sid] = raw
    if out.errors:
        out.errors["_form"] = f"{len(out.errors)} statement(s) still need an answer."
        return out
    p.value_answers = answers
    p.values_at_ms = now_ms()
    return out


def submit_verification(p: Participant, form: Form) -> Outcome:
    answers: dict[str, bool] = {}
    out = Outcome()
    for item in p.verification_items:
        sid = item["id"]
        raw = _one(form, f"verify_{sid}")
        out.values[f"verify_{sid}"] = raw
        if raw not in ("yes", "no"):
            out.errors[f"verify_{sid}"] = "Answer yes or no."
        else:
            answers[sid] = raw == "yes"
    if out.errors:
        out.errors["_form"] = f"{len(out.errors)} annotation(s) still need an answer."
        return out
    p.verification = answers
    p.verified_at_ms = now_ms()
    return out


def submit_screen(p: Participant, screen: Screen, form: Form) -> Outcome:
    """Rank 1..k (each rank once), rate each 1-5, optionally mark liked sentences and leave a comment.

    Fields use the display slots (1..k), never method names, so the page does not reveal the methods."""
    order = list(screen.display_order)
    k = len(order)
    out = Outcome()
    ranks: dict[str, int] = {}
    ratings: dict[str, int] = {}
    liked: dict[str, list[int]] = {}
    for slot, method in enumerate(order, start=1):
        raw_rank, raw_rate = _one(form, f"rank_{slot}"), _one(form, f"rate_{slot}")
        out.values[f"rank_{slot}"], out.values[f"rate_{slot}"] = raw_rank, raw_rate
        rank = _int(raw_rank, 1, k)
        if rank is None:
            out.errors[f"rank_{slot}"] = f"Give option {slot} a rank from 1 to {k}."
        else:
            ranks[method] = rank
        rating = _int(raw_rate, 1, 5)
        if rating is None:
            out.errors[f"rate_{slot}"] = f"Rate option {slot} from 1 to 5."
        else:
            ratings[method] = rating
        n_sentences = len(sentences(screen.texts.get(method, "")))
        picked = _many(form, f"like_{slot}")
        out.values[f"like_{slot}"] = picked
        indices = [_int(x, 0, n_sentences - 1) for x in picked]
        if any(i is None for i in indices):
            out.errors[f"like_{slot}"] = f"Option {slot} has no such sentence."
        else:
            liked[method] = sorted({i for i in indices if i is not None})
    if len(ranks) == k and sorted(ranks.values()) != list(range(1, k + 1)):
        out.errors["ranks"] = f"Give each description a different rank: 1 (most engaging) to {k}."
    comment = _one(form, "comment")
    out.values["comment"] = comment
    if len(comment) > COMMENT_MAX_CHARS:
        out.errors["comment"] = (
            f"Keep the comment under {COMMENT_MAX_CHARS} characters (it has {len(comment)})."
        )
    if out.errors:
        return out
    screen.ranks, screen.ratings = ranks, ratings
    screen.liked = {m: v for m, v in liked.items() if v}
    screen.comment = comment
    screen.answered_at_ms = now_ms()
    if all(s.answered_at_ms is not None for s in p.screens):
        p.ranking_done_at_ms = now_ms()
    return out


def progress(p: Participant) -> dict[str, str]:
    """Step -> "done" | "current" | "" for the administrator's progress table."""
    here = position(p)
    done_at = {
        Step.CONSENT: p.consent_at_ms,
        Step.DEMOGRAPHICS: p.demographics_at_ms,
        Step.GENRES: p.genres_at_ms,
        Step.PERSONALITY: p.personality_at_ms,
        Step.VALUES: p.values_at_ms,
        Step.INFERRING: p.inferred_at_ms,
        Step.VERIFY: p.verified_at_ms,
        Step.WAITING: p.profile_at_ms,
        Step.RANK: p.ranking_done_at_ms,
    }
    out = {}
    for step, at in done_at.items():
        out[step.value] = "done" if at is not None else ("current" if here.step is step else "")
    answered = sum(1 for s in p.screens if s.answered_at_ms is not None)
    out["screens"] = f"{answered}/{len(p.screens)}" if p.screens else ""
    return out


def submit(p: Participant, step: Step, form: Form) -> Outcome:
    """Validate and save the answers to one of the question steps (not RANK: see submit_screen)."""
    study = p.study
    if step is Step.CONSENT:
        return submit_consent(p, form)
    if step is Step.DEMOGRAPHICS:
        return submit_demographics(p, study, form)
    if step is Step.GENRES:
        return submit_genres(p, form)
    if step is Step.PERSONALITY:
        return submit_personality(p, form)
    if step is Step.VALUES:
        return submit_values(p, study, form)
    if step is Step.VERIFY:
        return submit_verification(p, form)
    raise ValueError(f"step {step.value} takes no answers")
