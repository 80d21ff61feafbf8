"""Background work, one job at a time in a worker thread, its state kept in the ``jobs`` table:

  infer     a participant's 140 other stances (annotator LLM) and their five verification statements
  profile   a participant's UserProfile (author LLM summaries)
  train     the cohort of every participant with a profile: pairs and the GRAVITY adapter (the pipeline)
  generate  each cohort member's books, the descriptions of every method, the ranking screens
  judge     the LLM judge on every answered screen, for the judge-participant agreement

Each job is idempotent (it skips what is already saved), so a job interrupted by a restart is queued again.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gravity.v1 import profile_pb2
from gravity_core.config import Settings
from gravity_core.llm import LLMClient, llm_for_role
from gravity_core.logging import get_logger
from gravity_core.proto_io import from_dict, to_dict
from gravity_judge.judging import Candidate
from gravity_study import instruments, profiles
from gravity_study.database import Database
from gravity_study.inference import infer_stances
from gravity_study.judging import ScreenJudge, make_judge, persona_of
from gravity_study.models import Job, Judgment, Participant, Screen, Study, now_ms
from gravity_study.pipeline import Cohort, DescriptionPipeline, Request, make_pipeline
from gravity_study.settings import StudySettings

log = get_logger(__name__)


class JobFailed(Exception):
    """A job cannot proceed; the message is shown to the administrator."""


def load_profile(p: Participant) -> profile_pb2.UserProfile:
    return from_dict(json.loads(p.profile_json), profile_pb2.UserProfile)


class JobRunner:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        cfg: StudySettings,
        pipeline: DescriptionPipeline | None = None,
        judge_factory: Callable[[], ScreenJudge] | None = None,
        llm: Callable[[str], LLMClient] | None = None,
    ) -> None:
        """``pipeline``, ``judge_factory`` and ``llm`` (role -> client) default to what the settings name."""
        self.db = db
        self.settings = settings
        self.cfg = cfg
        self._pipeline = pipeline
        self._judge_factory = judge_factory or (lambda: make_judge(settings, cfg))
        self._judge: ScreenJudge | None = None
        self.llm = llm or (lambda role: llm_for_role(settings, role))
        self._catalog: Any = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ shared parts
    @property
    def pipeline(self) -> DescriptionPipeline:
        if self._pipeline is None:
            self._pipeline = make_pipeline(self.settings, self.cfg)
        return self._pipeline

    def catalog(self) -> Any:
        if self._catalog is None:
            from gravity_core.catalog import Catalog

            path = self.cfg.resolved_meta_path()
            if not path.is_file():
                raise JobFailed(f"study.meta_path {path} does not exist")
            self._catalog = Catalog.open(path)
        return self._catalog

    def profiler_config(self) -> Any:
        from gravity_profiler.settings import ProfilerSettings

        return self.settings.section("profiler", ProfilerSettings)

    # ------------------------------------------------------------------ the worker
    def start(self) -> JobRunner:
        with self.db.session() as s:
            for job in s.scalars(select(Job).where(Job.state == "running")):
                job.state, job.message = "queued", "interrupted by a restart; queued again"
        self._thread = threading.Thread(target=self._loop, name="study-jobs", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._judge is not None:
            self._judge.close()
        if self._pipeline is not None:
            self._pipeline.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.run_next():
                self._wake.wait(1.0)
                self._wake.clear()

    def run_pending(self, say: Callable[[str], None] | None = None) -> int:
        """Run queued jobs until none is left (the demo, tests); returns how many ran.

        They run in a worker thread, as in the app: torch driven from the main thread of a busy machine is
        several times slower."""

        def drain() -> int:
            n = 0
            while self.run_next(say):
                n += 1
            return n

        with ThreadPoolExecutor(1, thread_name_prefix="study-jobs") as pool:
            return pool.submit(drain).result()

    def run_next(self, say: Callable[[str], None] | None = None) -> bool:
        with self.db.session() as s:
            job = s.scalar(select(Job).where(Job.state == "queued").order_by(Job.id).limit(1))
            if job is None:
                return False
            job.state, job.started_at_ms, job.message = "running", now_ms(), "started"
            job_id, kind, study_id, participant_id = job.id, job.kind, job.study_id, job.participant_id
        started = time.monotonic()

        def note(message: str) -> None:
            with self.db.session() as s:
                j = s.get(Job, job_id)
                if j is not None:
                    j.message = message[:2000]
            if say is not None:
                say(f"  {kind}: {message}")

        try:
            handler = getattr(self, f"_job_{kind}")
            message = handler(study_id, participant_id, note) or "done"
            state = "done"
        except JobFailed as exc:
            state, message = "failed", str(exc)
        except Exception as exc:  # shown to the administrator, with the trace in the log
            state, message = "failed", f"{type(exc).__name__}: {exc}"
            log.error("study_job_failed", job=job_id, kind=kind, trace=traceback.format_exc(limit=8))
        with self.db.session() as s:
            j = s.get(Job, job_id)
            if j is not None:
                j.state, j.message, j.finished_at_ms = state, message[:4000], now_ms()
                j.progress = 1.0 if state == "done" else j.progress
        if say is not None:
            say(f"  {kind}: {state} in {time.monotonic() - started:.0f}s — {message}")
        return True

    # ------------------------------------------------------------------ handlers
    def _job_infer(self, study_id: int, participant_id: int | None, note: Callable[[str], None]) -> str:
        with self.db.session() as s:
            p = s.get(Participant, participant_id)
            if p is None or p.values_at_ms is None:
                raise JobFailed("the participant has not answered the value statements")
            if p.inferred_at_ms is not None:
                return "already inferred"
            annotated = dict(p.value_answers)
            seed, code = p.study.seed, p.code
        llm = self.llm("annotator")
        bank = instruments.statements()
        note(f"inferring {len(bank) - len(annotated)} stances with {llm.info.name}")
        inferred = {sid: x.to_dict() for sid, x in infer_stances(llm, annotated, bank).items()}
        items = instruments.choose_verification(seed, code, inferred)
        unreadable = sum(1 for x in inferred.values() if x["label"] == instruments.UNREADABLE)
        with self.db.session() as s:
            p = s.get(Participant, participant_id)
            assert p is not None
            p.inferred, p.verification_items = inferred, items
            p.inference_model = f"{llm.info.backend}:{llm.info.name}"
            p.inferred_at_ms = now_ms()
            if len(items) < instruments.VERIFICATION_STATEMENTS:
                p.inference_error = f"only {len(items)} readable inferences to verify"
        return f"{len(inferred)} stances inferred ({unreadable} unreadable)"

    def _job_profile(self, study_id: int, participant_id: int | None, note: Callable[[str], None]) -> str:
        with self.db.session() as s:
            p = s.get(Participant, participant_id)
            if p is None or p.verified_at_ms is None:
                raise JobFailed("the participant has not finished the verification step")
            if p.profile_json:
                return "already built"
            answers = profiles.Answers(
                p.code,
                p.age_group,
                p.gender,
                p.country,
                tuple(p.genres),
                dict(p.ipip),
                dict(p.value_answers),
                dict(p.inferred),
            )
            inference_model = p.inference_model
        pc = self.profiler_config()
        author = self.llm("author")
        models = {
            "annotator": inference_model,
            "author": f"{author.info.backend}:{author.info.name}",
            "personality": "mini-ipip-self-report",
            "source": "gravity-study",
        }
        d = profiles.draft(
            answers,
            self.catalog(),
            pc.trait_threshold,
            pc.value_summary_max_statements,
            pc.value_summary_max_sentences,
            models,
        )
        if not d.profile.interests:
            raise JobFailed(
                f"none of the chosen categories ({', '.join(answers.genres)}) has books in the catalog"
            )
        note(f"writing the value summary and user summary with {author.info.name}")
        profile = profiles.write_summaries(
            [d], author, pc.summary_max_tokens, pc.value_summary_max_sentences
        )[0]
        with self.db.session() as s:
            p = s.get(Participant, participant_id)
            assert p is not None
            p.profile_json = json.dumps(to_dict(profile), ensure_ascii=False)
            p.profile_at_ms = now_ms()
        return f"profile built ({len(profile.interests)} interest genres)"

    def _job_train(self, study_id: int, participant_id: int | None, note: Callable[[str], None]) -> str:
        with self.db.session() as s:
            study = s.get(Study, study_id)
            assert study is not None
            members = [p for p in study.participants if p.profile_json]
            if not members:
                raise JobFailed("no participant has a profile yet")
            study.cohort_round += 1
            cohort_id = f"study-{study.slug}-r{study.cohort_round}"
            built = now_ms()
            cohort_profiles = [
                profiles.for_cohort(load_profile(p), cohort_id, len(members), built) for p in members
            ]
            study.cohort_id, study.cohort_members, study.adapter = cohort_id, [p.code for p in members], {}
        work = self.cfg.data_path() / "cohorts" / cohort_id
        note(f"cohort {cohort_id}: {len(members)} participant(s), pipeline {self.pipeline.kind}")
        adapter = self.pipeline.train(Cohort(cohort_id, cohort_profiles, work), note)
        if adapter:
            with self.db.session() as s:
                study = s.get(Study, study_id)
                assert study is not None
                study.adapter = adapter
            return f"cohort {cohort_id}: adapter {adapter['adapter_id']} trained"
        return f"cohort {cohort_id}: {len(members)} profile(s) published; waiting for the trainer's adapter"

    def readiness(self, study: Study) -> Any:
        return self.pipeline.readiness(study.cohort_id, dict(study.adapter or {}))

    def _job_generate(self, study_id: int, participant_id: int | None, note: Callable[[str], None]) -> str:
        from gravity_core.targets import EvaluationPool

        with self.db.session() as s:
            study = s.get(Study, study_id)
            assert study is not None
            if not study.cohort_id:
                raise JobFailed("train the cohort first")
            ready = self.readiness(study)
            if not ready.ready:
                raise JobFailed(f"the cohort's adapter is not ready: {ready.message}")
            if ready.adapter and ready.adapter != study.adapter:
                study.adapter = ready.adapter
            adapter = dict(study.adapter)
            members = [p for p in study.participants if p.code in set(study.cohort_members) and not p.screens]
            methods, books, seed = list(study.methods), study.books_per_participant, study.seed
            # The books come from the evaluation pools pairgen holds out of every training set, so the
            # cohort's adapter never trained on a description it is then asked to rewrite.
            evaluation = self.settings.evaluation.model_copy(update={"seed": seed})
            pool = EvaluationPool(self.catalog(), evaluation)
            plan = []
            for p in members:
                profile = load_profile(p)
                targets = pool.targets(profile, books)
                plan.append((p.id, p.code, profile, targets))
        requests = [
            Request(profile, book, m) for _, _, profile, targets in plan for book in targets for m in methods
        ]
        if not requests:
            return "every cohort member already has descriptions"
        note(f"{len(requests)} descriptions for {len(plan)} participant(s) ({', '.join(methods)})")
        generated = self.pipeline.generate(requests, adapter, note)
        by_key = {
            (g.request.profile.user_id, g.request.book.parent_asin, g.request.method): g for g in generated
        }
        failed = [g for g in generated if g.error]
        made = 0
        with self.db.session() as s:
            for pid, code, profile, targets in plan:
                found = s.get(Participant, pid)
                assert found is not None
                p = found
                position = 0
                for book in targets:
                    outs = [by_key.get((profile.user_id, book.parent_asin, m)) for m in methods]
                    if any(g is None or g.error or not g.text.strip() for g in outs):
                        continue  # a screen is shown only with every method's description
                    s.add(
                        Screen(
                            participant_id=p.id,
                            position=position,
                            parent_asin=book.parent_asin,
                            title=book.title,
                            genre=book.genre,
                            genre_group=book.genre_group,
                            texts={m: g.text.strip() for m, g in zip(methods, outs, strict=True) if g},
                            provenance={
                                m: {"model": g.model, "adapter": g.adapter}
                                for m, g in zip(methods, outs, strict=True)
                                if g
                            },
                            display_order=instruments.ordered_methods(methods, seed, code, book.parent_asin),
                            ranks={},
                            ratings={},
                            liked={},
                        )
                    )
                    position += 1
                    made += 1
        message = f"{made} ranking screen(s) for {len(plan)} participant(s)"
        if failed:
            message += f"; {len(failed)} description(s) failed (first: {failed[0].error})"
        return message

    def _job_judge(self, study_id: int, participant_id: int | None, note: Callable[[str], None]) -> str:
        if self._judge is None:
            self._judge = self._judge_factory()
        judge = self._judge
        with self.db.session() as s:
            study = s.get(Study, study_id)
            assert study is not None
            todo = []
            for p in study.participants:
                if not p.profile_json:
                    continue
                persona = persona_of(load_profile(p))
                for screen in p.screens:
                    if screen.answered_at_ms is None or any(
                        j.judge_model == judge.model for j in screen.judgments
                    ):
                        continue
                    todo.append(
                        (screen.id, persona, [Candidate(m, screen.texts[m]) for m in screen.display_order])
                    )
        for k, (screen_id, persona, candidates) in enumerate(todo, start=1):
            verdict = judge.judge(persona, candidates, key=str(screen_id))
            with self.db.session() as s:
                s.add(
                    Judgment(
                        screen_id=screen_id,
                        judge_model=judge.model,
                        usable=verdict.usable,
                        reason=verdict.reason,
                        ranking=verdict.ranking,
                        first_place=verdict.first_place,
                        ratings=verdict.ratings,
                        orders=self.cfg.judge_orders,
                    )
                )
            note(f"judged {k}/{len(todo)} screens")
        return f"{len(todo)} screen(s) judged by {judge.model}"


def queue_after_submit(session: Session, p: Participant) -> None:
    """The background step a submission starts: inference after the values, the profile after verifying."""
    from gravity_study.studies import enqueue

    if p.values_at_ms is not None and p.inferred_at_ms is None:
        enqueue(session, p.study, "infer", p)
    elif p.verified_at_ms is not None and not p.profile_json:
        enqueue(session, p.study, "profile", p)
