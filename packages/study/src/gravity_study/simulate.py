"""Simulated participants for the demo and tests: answers drawn deterministically from a seed, submitted
through the same flow functions (and validation) as the web pages, and labelled simulated everywhere.

They are not people: their rankings are seeded random draws, so their Table 4 shows the pipeline working,
not a finding about readers.
"""

from __future__ import annotations

from gravity_study import flow
from gravity_study.flow import Form, Step
from gravity_study.instruments import AGE_GROUPS, GENDERS, STANCE_LABELS, ipip_items, rng_for, sentences
from gravity_study.models import Participant, Study

SIMULATED_LABEL = "simulated participant"


def answers_for(step: Step, p: Participant, study: Study, seed: int, genres: list[str]) -> Form:
    """A complete, valid form for ``step`` drawn from (seed, participant code, step)."""
    rng = rng_for(seed, "simulated", p.code, step.value)
    if step is Step.CONSENT:
        return {"consent": ["yes"]}
    if step is Step.DEMOGRAPHICS:
        gender = rng.choice([g for g, _ in GENDERS if g])
        country = study.countries[sum(map(ord, p.code)) % len(study.countries)]
        return {"age_group": [rng.choice(AGE_GROUPS)[0]], "gender": [gender], "country": [country]}
    if step is Step.GENRES:
        return {"genre": rng.sample(genres, 3)}
    if step is Step.PERSONALITY:
        return {f"ipip_{i.id}": [str(rng.randint(1, 5))] for i in ipip_items()}
    if step is Step.VALUES:
        return {f"value_{sid}": [rng.choice(STANCE_LABELS)] for sid in study.value_statements}
    if step is Step.VERIFY:
        # Agrees with most annotations, as the paper's participants did (84%).
        return {f"verify_{i['id']}": ["yes" if rng.random() < 0.8 else "no"] for i in p.verification_items}
    raise ValueError(f"no simulated answers for step {step.value}")


def screen_answers(p: Participant, position: int, seed: int) -> Form:
    screen = p.screens[position]
    rng = rng_for(seed, "simulated", p.code, "rank", screen.parent_asin)
    k = len(screen.display_order)
    ranks = list(range(1, k + 1))
    rng.shuffle(ranks)
    form: dict[str, list[str]] = {}
    for slot, rank in enumerate(ranks, start=1):
        form[f"rank_{slot}"] = [str(rank)]
        # Ratings follow the ranking loosely: better ranks tend to get higher ratings.
        form[f"rate_{slot}"] = [str(max(1, min(5, 5 - rank + rng.choice((0, 1)))))]
        n = len(sentences(screen.texts[screen.display_order[slot - 1]]))
        if rank == 1 and n:
            form[f"like_{slot}"] = [str(rng.randrange(n))]
    return form


def advance(p: Participant, study: Study, seed: int, genres: list[str]) -> Step | None:
    """Answer the participant's current step when it is one they answer; returns the step answered."""
    here = flow.position(p)
    if here.step in (Step.INFERRING, Step.WAITING, Step.DONE):
        return None
    if here.step is Step.RANK:
        outcome = flow.submit_screen(p, p.screens[here.screen], screen_answers(p, here.screen, seed))
    else:
        outcome = flow.submit(p, here.step, answers_for(here.step, p, study, seed, genres))
    if not outcome.ok:
        raise AssertionError(f"simulated answers were refused at {here.step.value}: {outcome.errors}")
    return here.step
