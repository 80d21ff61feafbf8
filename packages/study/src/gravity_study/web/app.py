"""The study web application (Starlette, server-rendered Jinja2 pages with autoescape, no build step).

Participant pages live under ``/p/<token>/...``; administrator pages under ``/admin`` need the admin password
(a signed session cookie) or ``Authorization: Bearer <token>``. Every POST form carries a CSRF token.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gravity_core.errors import InvalidInput
from gravity_study import flow, instruments, studies
from gravity_study.database import Database
from gravity_study.flow import Step
from gravity_study.jobs import JobRunner, queue_after_submit
from gravity_study.models import AppSecret, Participant
from gravity_study.results import to_csv
from gravity_study.settings import StudySettings
from gravity_study.web.security import ADMIN_COOKIE, AdminAuth, SecurityMiddleware, csrf_ok, csrf_token

STEP_TITLES = {
    Step.CONSENT: "Consent",
    Step.DEMOGRAPHICS: "About you",
    Step.GENRES: "Your favourite book categories",
    Step.PERSONALITY: "How you see yourself",
    Step.VALUES: "Your views",
    Step.INFERRING: "One moment",
    Step.VERIFY: "Check our guesses",
    Step.WAITING: "Thank you",
    Step.RANK: "Rank the descriptions",
    Step.DONE: "All done",
}


@dataclass
class StudyApp:
    db: Database
    cfg: StudySettings
    runner: JobRunner
    auth: AdminAuth
    templates: Environment

    # ------------------------------------------------------------------ rendering
    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("errors", {})
        context.setdefault("values", {})
        html = self.templates.get_template(name).render(request=request, csrf=csrf_token(request), **context)
        return HTMLResponse(html, status_code=status)

    def problem(self, request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(request, "problem.html", status, title=title, message=message)

    async def form(self, request: Request) -> dict[str, list[str]] | None:
        """The posted form as field -> values, or None when the CSRF check fails."""
        data = await request.form()
        flat = {k: data.getlist(k) for k in data}
        single = {k: v[0] if v else "" for k, v in flat.items()}
        if not csrf_ok(request, single):
            return None
        return {k: [str(x) for x in v] for k, v in flat.items()}

    def csrf_failed(self, request: Request) -> HTMLResponse:
        return self.problem(
            request, 403, "This form has expired", "Please reload the page and submit your answers again."
        )

    # ------------------------------------------------------------------ participant
    def _participant(self, s: Session, token: str) -> Participant | None:
        return studies.participant_by_token(s, token)

    async def participant_home(self, request: Request) -> Response:
        token = request.path_params["token"]
        with self.db.session() as s:
            p = self._participant(s, token)
            if p is None:
                return self.bad_link(request)
            return RedirectResponse(f"/p/{token}/{flow.position(p).path}", status_code=303)

    def bad_link(self, request: Request) -> HTMLResponse:
        return self.problem(
            request, 404, "This link is not valid", "Check that you copied the whole link you were given."
        )

    async def participant_step(self, request: Request) -> Response:
        token, name = request.path_params["token"], request.path_params.get("step", "rank")
        screen = request.path_params.get("n")
        post = request.method == "POST"
        form = await self.form(request) if post else None
        if post and form is None:
            return self.csrf_failed(request)
        with self.db.session() as s:
            p = self._participant(s, token)
            if p is None:
                return self.bad_link(request)
            here = flow.position(p)
            asked = f"rank/{screen}" if screen is not None else name
            if asked != here.path:
                # Steps are answered in order; any other step's URL leads back to where the participant is.
                return RedirectResponse(f"/p/{token}/{here.path}", status_code=303)
            outcome = None
            if post and form is not None:
                if here.step is Step.RANK:
                    outcome = flow.submit_screen(p, p.screens[here.screen], form)
                elif here.step in (Step.INFERRING, Step.WAITING, Step.DONE):
                    return RedirectResponse(f"/p/{token}/{here.path}", status_code=303)
                else:
                    outcome = flow.submit(p, here.step, form)
                if outcome.ok:
                    queue_after_submit(s, p)
                    s.flush()
                    self.runner.wake()
                    return RedirectResponse(f"/p/{token}/{flow.position(p).path}", status_code=303)
                s.rollback()
                p = self._participant(s, token)
                assert p is not None
            return self.render(
                request,
                f"step_{here.step.value}.html",
                400 if outcome is not None else 200,
                p=p,
                study=p.study,
                token=token,
                step=here.step,
                title=STEP_TITLES[here.step],
                errors=outcome.errors if outcome else {},
                values=outcome.values if outcome else {},
                steps=[st for st in flow.ANSWER_STEPS],
                screen=p.screens[here.screen] if here.step is Step.RANK else None,
                screen_number=here.screen + 1,
                **self._step_context(p, here.step),
            )

    def _step_context(self, p: Participant, step: Step) -> dict[str, Any]:
        if step is Step.DEMOGRAPHICS:
            return {
                "age_groups": instruments.AGE_GROUPS,
                "genders": instruments.GENDERS,
                "prefer_not": flow.PREFER_NOT_TO_SAY,
            }
        if step is Step.GENRES:
            return {"genres": instruments.genre_options(), "pick": instruments.GENRES_TO_PICK}
        if step is Step.PERSONALITY:
            return {"items": instruments.ipip_items(), "scale": instruments.IPIP_SCALE}
        if step in (Step.VALUES, Step.VERIFY):
            return {"bank": instruments.statements(), "labels": instruments.STANCE_LABELS}
        if step is Step.RANK:
            return {"split": instruments.sentences}
        return {}

    # ------------------------------------------------------------------ administrator
    def admin_required(self, request: Request, download: bool = False) -> Response | None:
        if self.auth.is_admin(request):
            return None
        if download:
            return PlainTextResponse("administrator login required", status_code=401)
        return RedirectResponse("/admin/login", status_code=303)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html", title="Administrator login")
        form = await self.form(request)
        if form is None:
            return self.csrf_failed(request)
        if not self.auth.check_password((form.get("password") or [""])[0]):
            import asyncio

            await asyncio.sleep(0.5)  # slows down guessing
            return self.render(
                request,
                "login.html",
                401,
                title="Administrator login",
                errors={"password": "Wrong password."},
            )
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(
            ADMIN_COOKIE,
            self.auth.session_value(),
            httponly=True,
            samesite="strict",
            secure=self.cfg.secure_cookies,
        )
        return response

    async def logout(self, request: Request) -> Response:
        if await self.form(request) is None:
            return self.csrf_failed(request)
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(ADMIN_COOKIE)
        return response

    async def admin_home(self, request: Request) -> Response:
        if (denied := self.admin_required(request)) is not None:
            return denied
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        if request.method == "POST":
            form = await self.form(request)
            if form is None:
                return self.csrf_failed(request)
            values = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
            try:
                books = int((form.get("books_per_participant") or [""])[0])
            except ValueError:
                errors["books_per_participant"] = "Give a whole number of books."
                books = 0
            if not errors:
                try:
                    with self.db.session() as s:
                        study = studies.create_study(
                            s,
                            (form.get("name") or [""])[0],
                            (form.get("slug") or [""])[0],
                            form.get("baselines") or [],
                            books,
                            (form.get("countries") or [""])[0].split(","),
                            self.cfg.seed,
                        )
                        slug = study.slug
                    return RedirectResponse(f"/admin/studies/{slug}", status_code=303)
                except InvalidInput as exc:
                    errors[exc.field] = exc.message
        with self.db.session() as s:
            from sqlalchemy import select

            from gravity_study.models import Study

            all_studies = list(s.scalars(select(Study).order_by(Study.id)))
            return self.render(
                request,
                "admin_home.html",
                400 if errors else 200,
                title="Studies",
                studies=all_studies,
                baselines=studies.BASELINES,
                defaults=self.cfg,
                errors=errors,
                values=values,
            )

    async def admin_study(self, request: Request) -> Response:
        if (denied := self.admin_required(request)) is not None:
            return denied
        slug = request.path_params["slug"]
        errors: dict[str, str] = {}
        notice = ""
        if request.method == "POST":
            form = await self.form(request)
            if form is None:
                return self.csrf_failed(request)
            action = (form.get("action") or [""])[0]
            with self.db.session() as s:
                study = studies.study_by_slug(s, slug)
                if study is None:
                    return self.problem(request, 404, "No such study", f"There is no study {slug!r}.")
                try:
                    if action == "add":
                        try:
                            count = int((form.get("count") or [""])[0])
                        except ValueError:
                            raise InvalidInput("count", "give a whole number of participants") from None
                        studies.add_participants(s, study, count, (form.get("label") or [""])[0])
                        notice = f"Added {count} participant link(s)."
                    elif action == "retry":
                        retried = studies.retry_failed(s, study)
                        notice = f"Queued {retried} failed job(s) again."
                    elif action in ("train", "generate", "judge"):
                        if action == "train" and not studies.profiles_ready(study):
                            raise InvalidInput("action", "no participant has a profile yet")
                        studies.enqueue(s, study, action)
                        notice = f"Queued: {action}."
                    else:
                        raise InvalidInput("action", f"unknown action {action!r}")
                except InvalidInput as exc:
                    s.rollback()
                    errors[exc.field] = exc.message
            if not errors:
                self.runner.wake()
                return RedirectResponse(f"/admin/studies/{slug}?notice={notice}", status_code=303)
        with self.db.session() as s:
            study = studies.study_by_slug(s, slug)
            if study is None:
                return self.problem(request, 404, "No such study", f"There is no study {slug!r}.")
            readiness = None
            if study.cohort_id:
                try:
                    readiness = self.runner.readiness(study)
                except Exception as exc:
                    readiness = type("R", (), {"ready": False, "message": f"{type(exc).__name__}: {exc}"})()
            return self.render(
                request,
                "admin_study.html",
                400 if errors else 200,
                title=study.name,
                study=study,
                participants=study.participants,
                progress={p.id: flow.progress(p) for p in study.participants},
                step_names=[
                    st.value
                    for st in (
                        Step.CONSENT,
                        Step.DEMOGRAPHICS,
                        Step.GENRES,
                        Step.PERSONALITY,
                        Step.VALUES,
                        Step.INFERRING,
                        Step.VERIFY,
                        Step.WAITING,
                        Step.RANK,
                    )
                ],
                jobs=studies.jobs_of(s, study),
                ready_profiles=len(studies.profiles_ready(study)),
                readiness=readiness,
                base_url=self.cfg.public_url.rstrip("/") or str(request.base_url).rstrip("/"),
                errors=errors,
                notice=request.query_params.get("notice", notice)[:200],
                statements=instruments.statements(),
            )

    def _results(self, slug: str) -> dict[str, Any] | None:
        with self.db.session() as s:
            study = studies.study_by_slug(s, slug)
            if study is None:
                return None
            out = studies.compute_results(study, self.cfg.bootstrap_samples, self.cfg.confidence)
            out["raw"] = studies.raw_answers(study)
            return out

    async def admin_results(self, request: Request) -> Response:
        if (denied := self.admin_required(request)) is not None:
            return denied
        results = self._results(request.path_params["slug"])
        if results is None:
            return self.problem(request, 404, "No such study", "There is no such study.")
        return self.render(request, "results.html", title=f"Results: {results['study']['name']}", r=results)

    async def admin_export(self, request: Request) -> Response:
        if (denied := self.admin_required(request, download=True)) is not None:
            return denied
        slug, fmt = request.path_params["slug"], request.path_params["fmt"]
        if fmt not in ("json", "csv"):
            return PlainTextResponse("results come as results.json or results.csv", status_code=404)
        results = self._results(slug)
        if results is None:
            return PlainTextResponse("no such study", status_code=404)
        disposition = {"content-disposition": f'attachment; filename="{slug}-results.{fmt}"'}
        if fmt == "json":
            return JSONResponse(results, headers=disposition)
        return PlainTextResponse(to_csv(results), media_type="text/csv", headers=disposition)

    async def index(self, request: Request) -> Response:
        return self.render(request, "index.html", title="GRAVITY user study")

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")


def templates() -> Environment:
    root = resources.files("gravity_study").joinpath("web/templates")
    env = Environment(
        loader=FileSystemLoader(str(root)),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["ci"] = _ci
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False)
    from gravity_judge.methods import display_name

    env.filters["method_name"] = display_name
    return env


def _pct(estimate: dict[str, Any] | None, digits: int = 1) -> str:
    return "–" if not estimate or estimate.get("value") is None else f"{estimate['value']:.{digits}f}"


def _ci(estimate: dict[str, Any] | None, digits: int = 1) -> str:
    if not estimate or estimate.get("ci_low") is None:
        return ""
    return f"[{estimate['ci_low']:.{digits}f}, {estimate['ci_high']:.{digits}f}]"


def secret_key(db: Database, cfg: StudySettings) -> str:
    """The configured key, else one made once and kept in the database (sessions survive restarts)."""
    if cfg.secret_key is not None and cfg.secret_key.get_secret_value():
        return cfg.secret_key.get_secret_value()
    with db.session() as s:
        row = s.get(AppSecret, "session_key")
        if row is None:
            row = AppSecret(name="session_key", value=secrets.token_hex(32))
            s.add(row)
        return row.value


def create_app(
    db: Database, cfg: StudySettings, runner: JobRunner, admin_token: str, start_jobs: bool = True
) -> Starlette:
    app_state = StudyApp(db, cfg, runner, AdminAuth(admin_token, secret_key(db, cfg)), templates())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if start_jobs:
            runner.start()
        try:
            yield
        finally:
            if start_jobs:
                runner.stop()

    static = StaticFiles(directory=str(resources.files("gravity_study").joinpath("web/static")))
    a = app_state
    routes = [
        Route("/", a.index),
        Route("/healthz", a.health),
        Route("/p/{token}", a.participant_home),
        Route("/p/{token}/rank/{n:int}", a.participant_step, methods=["GET", "POST"], name="rank"),
        Route("/p/{token}/{step}", a.participant_step, methods=["GET", "POST"]),
        Route("/admin/login", a.login, methods=["GET", "POST"]),
        Route("/admin/logout", a.logout, methods=["POST"]),
        Route("/admin", a.admin_home, methods=["GET", "POST"]),
        Route("/admin/studies/{slug}", a.admin_study, methods=["GET", "POST"]),
        Route("/admin/studies/{slug}/results", a.admin_results),
        Route("/admin/studies/{slug}/results.{fmt:str}", a.admin_export),
        Mount("/static", static, name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityMiddleware, secure_cookies=cfg.secure_cookies)],
        lifespan=lifespan,
    )
    app.state.study = app_state
    return app
