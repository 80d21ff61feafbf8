"""Studies, participants and their links, the job queue, and the results read back from the database."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gravity_core import names
from gravity_core.errors import InvalidInput
from gravity_generator.methods import PROMPT_METHODS
from gravity_judge.methods import ORIGINAL
from gravity_study import results as res
from gravity_study.instruments import choose_value_statements
from gravity_study.models import Job, Participant, Study, now_ms

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
GRAVITY = names.GRAVITY
# Baselines a participant's profile can feed: prompt methods that need no review history (LaMP retrieves
# the reader's reviews; participants have none) and no adapter of their own.
BASELINES = tuple(m for m in PROMPT_METHODS if m not in (ORIGINAL, names.LAMP))
JOB_KINDS = ("infer", "profile", "train", "generate", "judge")


def create_study(
    session: Session,
    name: str,
    slug: str,
    baselines: Sequence[str],
    books_per_participant: int,
    countries: Sequence[str],
    seed: int,
) -> Study:
    """Validate and store a study (errors name the field)."""
    name, slug = name.strip(), slug.strip().lower()
    if not name:
        raise InvalidInput("name", "give the study a name")
    if not SLUG.match(slug):
        raise InvalidInput(
            "slug", "use 1-63 lower-case letters, digits and dashes, starting with a letter or digit"
        )
    if session.scalar(select(Study).where(Study.slug == slug)) is not None:
        raise InvalidInput("slug", f"a study named {slug!r} already exists")
    chosen = list(dict.fromkeys(b.strip() for b in baselines if b.strip()))
    if not chosen:
        raise InvalidInput("baselines", f"choose at least one baseline ({', '.join(BASELINES)})")
    unknown = [b for b in chosen if b not in BASELINES]
    if unknown:
        raise InvalidInput(
            "baselines", f"unknown baseline {unknown[0]!r} (choose from {', '.join(BASELINES)})"
        )
    if not 1 <= books_per_participant <= 50:
        raise InvalidInput("books_per_participant", "must be between 1 and 50")
    clean = list(dict.fromkeys(c.strip() for c in countries if c.strip()))
    if not clean:
        raise InvalidInput("countries", "name at least one country")
    study = Study(
        slug=slug,
        name=name,
        methods=[ORIGINAL, GRAVITY, *chosen],
        books_per_participant=books_per_participant,
        countries=clean,
        value_statements=choose_value_statements(seed),
        seed=seed,
        cohort_members=[],
        adapter={},
    )
    session.add(study)
    session.flush()
    return study


def add_participants(
    session: Session, study: Study, count: int, label: str = "", simulated: bool = False
) -> list[Participant]:
    if not 1 <= count <= 500:
        raise InvalidInput("count", "add between 1 and 500 participants at a time")
    out = []
    for _ in range(count):
        participant = Participant(
            study_id=study.id,
            code=f"{study.slug[:16]}-{secrets.token_hex(4)}",
            token=secrets.token_urlsafe(24),
            label=label.strip()[:200],
            simulated=simulated,
            genres=[],
            ipip={},
            value_answers={},
            inferred={},
            verification_items=[],
            verification={},
        )
        session.add(participant)
        out.append(participant)
    session.flush()
    return out


def study_by_slug(session: Session, slug: str) -> Study | None:
    return session.scalar(select(Study).where(Study.slug == slug))


def participant_by_token(session: Session, token: str) -> Participant | None:
    if not token or len(token) > 64:
        return None
    return session.scalar(select(Participant).where(Participant.token == token))


def enqueue(session: Session, study: Study, kind: str, participant: Participant | None = None) -> Job:
    """Queue a job unless the same one is already queued or running (a double click queues it once)."""
    if kind not in JOB_KINDS:
        raise InvalidInput("kind", f"unknown job {kind!r}")
    pending = session.scalar(
        select(Job).where(
            Job.study_id == study.id,
            Job.kind == kind,
            Job.participant_id == (participant.id if participant else None),
            Job.state.in_(("queued", "running")),
        )
    )
    if pending is not None:
        return pending
    job = Job(
        study_id=study.id, participant_id=participant.id if participant else None, kind=kind, state="queued"
    )
    session.add(job)
    session.flush()
    return job


def retry_failed(session: Session, study: Study) -> int:
    """Queue the study's failed jobs again (each job skips what is already saved)."""
    failed = list(session.scalars(select(Job).where(Job.study_id == study.id, Job.state == "failed")))
    for job in failed:
        job.state, job.message = "queued", f"retried after: {job.message}"[:4000]
    return len(failed)


def jobs_of(session: Session, study: Study, limit: int = 20) -> list[Job]:
    return list(
        session.scalars(select(Job).where(Job.study_id == study.id).order_by(Job.id.desc()).limit(limit))
    )


def profiles_ready(study: Study) -> list[Participant]:
    return [p for p in study.participants if p.profile_json]


def collect(study: Study, judge_model: str = "") -> tuple[list[res.RankedScreen], list[res.Verification]]:
    """Answered screens (with the judge's verdicts when ``judge_model`` judged them) and verifications."""
    screens, verifications = [], []
    for p in study.participants:
        if p.verified_at_ms is not None and p.verification:
            verifications.append(
                res.Verification(
                    p.code, p.country, tuple(bool(v) for v in p.verification.values()), p.simulated
                )
            )
        for s in p.screens:
            if s.answered_at_ms is None:
                continue
            verdict = next(
                (j for j in s.judgments if j.usable and (not judge_model or j.judge_model == judge_model)),
                None,
            )
            screens.append(
                res.RankedScreen(
                    p.code,
                    p.country,
                    s.parent_asin,
                    {m: int(r) for m, r in s.ranks.items()},
                    {m: float(r) for m, r in s.ratings.items()},
                    p.simulated,
                    tuple(verdict.ranking) if verdict else (),
                    {m: float(v) for m, v in verdict.ratings.items()} if verdict else {},
                )
            )
    return screens, verifications


def latest_judge_model(study: Study) -> str:
    latest: tuple[int, str] = (0, "")
    for p in study.participants:
        for s in p.screens:
            for j in s.judgments:
                latest = max(latest, (j.created_at_ms, j.judge_model))
    return latest[1]


def compute_results(study: Study, samples: int, confidence: float) -> dict[str, Any]:
    judge_model = latest_judge_model(study)
    screens, verifications = collect(study, judge_model)
    out = res.compute(screens, verifications, study.methods, samples, confidence, study.seed, judge_model)
    out["study"] = {
        "slug": study.slug,
        "name": study.name,
        "methods": study.methods,
        "countries": study.countries,
    }
    out["computed_at_ms"] = now_ms()
    return out


def raw_answers(study: Study) -> list[dict[str, Any]]:
    """Every participant's answers as stored (the JSON export's raw part)."""
    out = []
    for p in study.participants:
        out.append(
            {
                "participant": p.code,
                "simulated": p.simulated,
                "age_group": p.age_group,
                "gender": p.gender,
                "country": p.country,
                "genres": p.genres,
                "ipip": p.ipip,
                "value_answers": p.value_answers,
                "inferred": p.inferred,
                "inference_model": p.inference_model,
                "verification_items": p.verification_items,
                "verification": p.verification,
                "screens": [
                    {
                        "position": s.position,
                        "parent_asin": s.parent_asin,
                        "title": s.title,
                        "display_order": s.display_order,
                        "ranks": s.ranks,
                        "ratings": s.ratings,
                        "liked": s.liked,
                        "comment": s.comment,
                        "texts": s.texts,
                        "provenance": s.provenance,
                        "answered_at_ms": s.answered_at_ms,
                        "judgments": [
                            {
                                "judge_model": j.judge_model,
                                "usable": j.usable,
                                "ranking": j.ranking,
                                "first_place": j.first_place,
                                "ratings": j.ratings,
                            }
                            for j in s.judgments
                        ],
                    }
                    for s in p.screens
                ],
            }
        )
    return out
