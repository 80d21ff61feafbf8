"""`gravity study demo`: the study app on the embedded defaults with three simulated participants already
through the whole flow (consent to ranking), so the results page shows Table 4 and the judge-participant
agreement at once.

Every stage is the real one at demo size: the annotator (SmolLM2) infers each participant's 140 stances, the
author writes their summaries, pairgen builds the cohort's pairs, the trainer trains the GRAVITY adapter for a
few steps, the generator writes the descriptions (original, GRAVITY, TriAgent), the simulated participants
rank them, and the LLM judge ranks the same screens. Only the participants' answers are simulated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravity_core.config import Settings
from gravity_study import flow, simulate, studies
from gravity_study.database import Database
from gravity_study.jobs import JobRunner, queue_after_submit
from gravity_study.models import Participant, Study
from gravity_study.profiles import catalog_genres
from gravity_study.settings import StudySettings

DEMO_SLUG = "demo"


@dataclass
class DemoReport:
    slug: str
    participants: list[str]
    open_link: str
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)


def demo_overrides(data_dir: Path, books: int, steps: int, max_new_tokens: int) -> dict[str, Any]:
    return {
        "study.data_dir": str(data_dir),
        "study.pipeline": "embedded",
        "study.judge": "embedded",
        "study.books_per_participant": books,
        "study.max_new_tokens": max_new_tokens,
        "study.embedded.max_steps": steps,
        "study.judge_orders": 2,
        # Short summaries, so the author's calls stay quick on a CPU.
        "profiler.summary_max_tokens": 64,
    }


def run_demo(
    settings: Settings,
    cfg: StudySettings,
    db: Database,
    runner: JobRunner,
    participants: int,
    say: Callable[[str], None],
) -> DemoReport:
    started = time.monotonic()
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        timings[name] = round(time.monotonic() - t0, 1)
        say(f"      done in {timings[name]:.0f}s (total {time.monotonic() - started:.0f}s)")

    t0 = time.monotonic()
    say(f"[1/6] creating study {DEMO_SLUG!r} with {participants} simulated participants")
    with db.session() as s:
        study = studies.study_by_slug(s, DEMO_SLUG)
        if study is None:
            study = studies.create_study(
                s,
                "Demo study (simulated participants)",
                DEMO_SLUG,
                [cfg.baseline],
                cfg.books_per_participant,
                cfg.countries,
                cfg.seed,
            )
        missing = participants - sum(1 for p in study.participants if p.simulated)
        if missing > 0:
            studies.add_participants(s, study, missing, simulate.SIMULATED_LABEL, simulated=True)
        if not any(not p.simulated for p in study.participants):
            studies.add_participants(s, study, 1, "try it yourself")
        study_id = study.id
    genres = [g for g, items in catalog_genres(runner.catalog()).items() if items]
    stage("setup", t0)

    def answer_all() -> None:
        with db.session() as s:
            study = s.get(Study, study_id)
            assert study is not None
            for p in study.participants:
                if not p.simulated:
                    continue
                while simulate.advance(p, study, cfg.seed, genres) is not None:
                    queue_after_submit(s, p)
                s.flush()

    t0 = time.monotonic()
    say(
        "[2/6] answering consent, demographics, genres, Mini-IPIP and ten values; the annotator infers 140 stances"
    )
    answer_all()
    runner.run_pending(say)
    stage("answers+inference", t0)

    t0 = time.monotonic()
    say("[3/6] verifying five inferences each; the author writes value and user summaries (profiles)")
    answer_all()
    runner.run_pending(say)
    stage("verification+profiles", t0)

    with db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        t0 = time.monotonic()
        say("[4/6] pairs + training for the cohort (pairgen, trainer: gravity-dpo)")
        if not study.adapter:
            studies.enqueue(s, study, "train")
    runner.run_pending(say)
    _require_done(db, study_id, "train")
    stage("pairs+training", t0)

    t0 = time.monotonic()
    say("[5/6] descriptions for every screen (generator: original, GRAVITY, baseline)")
    with db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        studies.enqueue(s, study, "generate")
    runner.run_pending(say)
    _require_done(db, study_id, "generate")
    stage("generation", t0)

    t0 = time.monotonic()
    say("[6/6] the simulated participants rank and rate; the LLM judge ranks the same screens")
    answer_all()
    with db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        studies.enqueue(s, study, "judge")
    runner.run_pending(say)
    _require_done(db, study_id, "judge")
    stage("ranking+judge", t0)
    timings["total"] = round(time.monotonic() - started, 1)

    with db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        sims = [p for p in study.participants if p.simulated]
        unfinished = [p.code for p in sims if flow.position(p).step is not flow.Step.DONE]
        if unfinished:
            raise RuntimeError(f"simulated participants did not finish: {', '.join(unfinished)}")
        open_p: Participant = next(p for p in study.participants if not p.simulated)
        results = studies.compute_results(study, cfg.bootstrap_samples, cfg.confidence)
        return DemoReport(DEMO_SLUG, [p.code for p in sims], open_p.token, timings, results)


def _require_done(db: Database, study_id: int, kind: str) -> None:
    from sqlalchemy import select

    from gravity_study.models import Job

    with db.session() as s:
        job = s.scalar(
            select(Job).where(Job.study_id == study_id, Job.kind == kind).order_by(Job.id.desc()).limit(1)
        )
        if job is None or job.state != "done":
            raise RuntimeError(f"the {kind} job did not finish: {job.message if job else 'never queued'}")
