"""The compare page's routes: ``GET /compare``, ``POST /compare/regenerate``, the token login.

With ``grpc.auth_token`` set, the page needs the same token as every other call: an ``Authorization:
Bearer`` header, or the token typed once into the login form, which answers with a signed HttpOnly,
SameSite=Strict session cookie (12 h; signed with a key derived from the token, so every replica accepts
it and rotating the token ends it). Every form carries a CSRF token; pages carry gravity_core.web's
security headers (no script at all).
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gravity.v1 import profile_pb2
from gravity_core import names
from gravity_core.catalog import Catalog
from gravity_core.config import EvaluationSettings
from gravity_core.errors import GravityError
from gravity_core.targets import EvaluationPool
from gravity_core.web.errors import http_error
from gravity_core.web.security import (
    SecurityMiddleware,
    SessionAuth,
    csrf_ok,
    csrf_token,
    derived_key,
)
from gravity_generator.methods import BookInput
from gravity_generator.requests import catalog_book, reader_profile
from gravity_generator.serving import PersonalizeServing
from gravity_generator.web.compare import PENDING, CompareBoard, profile_view, reader_label

SESSION_COOKIE = "gravity_generator_session"
CSRF_COOKIE = "gravity_generator_csrf"
# Readers listed in the page's menu; any other is reachable as /compare?user=<id>.
READER_OPTIONS = 1000
REFRESH_S = 2


def templates() -> Environment:
    root = resources.files("gravity_generator").joinpath("web/templates")
    return Environment(
        loader=FileSystemLoader(str(root)),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


class ComparePages:
    def __init__(
        self,
        serving: PersonalizeServing,
        board: CompareBoard,
        token: str | None,
        evaluation: EvaluationSettings,
        secure_cookies: bool = False,
    ) -> None:
        self.serving = serving
        self.app = serving.app
        self.board = board
        self.evaluation = evaluation
        self.secure_cookies = secure_cookies
        self.auth = (
            SessionAuth(token, derived_key(token, "generator-compare"), SESSION_COOKIE, purpose="compare")
            if token
            else None
        )
        self.templates = templates()
        self._pool: EvaluationPool | None = None
        self._pool_catalog: Catalog | None = None

    # ------------------------------------------------------------------ plumbing
    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(name).render(
            request=request, csrf=csrf_token(request), auth=self.auth is not None, **context
        )
        return HTMLResponse(html, status_code=status)

    def allowed(self, request: Request) -> bool:
        return self.auth is None or self.auth.is_authorized(request)

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted form (first value per field), or None when the CSRF check fails."""
        data = await request.form()
        form = {k: str(v) for k, v in data.items()}
        return form if csrf_ok(request, form, CSRF_COOKIE) else None

    def evaluation_pool(self) -> EvaluationPool:
        catalog = self.app.catalog
        assert catalog is not None
        if self._pool is None or self._pool_catalog is not catalog:
            self._pool, self._pool_catalog = EvaluationPool(catalog, self.evaluation), catalog
        return self._pool

    # ------------------------------------------------------------------ routes
    async def home(self, request: Request) -> Response:
        return RedirectResponse("/compare", status_code=303)

    async def login(self, request: Request) -> Response:
        if self.auth is None:
            return RedirectResponse("/compare", status_code=303)
        if request.method == "GET":
            return self.render(request, "login.html", title="Sign in")
        form = await self.form(request)
        if form is None:
            return self.render(
                request, "login.html", 403, title="Sign in", error="The form expired: try again."
            )
        if not self.auth.check_password(form.get("token", "")):
            await asyncio.sleep(0.5)  # slows down guessing
            return self.render(request, "login.html", 401, title="Sign in", error="Wrong token.")
        response = RedirectResponse("/compare", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            self.auth.session_value(),
            max_age=self.auth.lifetime_s,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies,
        )
        return response

    async def compare(self, request: Request) -> Response:
        if not self.allowed(request):
            return self.render(request, "login.html", 401, title="Sign in")
        if self.app.engine is None or not self.app.loaded.is_set():
            return self.render(request, "loading.html", 503, title="Compare methods", refresh=5)
        user = request.query_params.get("user", "").strip()
        asin = (request.query_params.get("asin", "") or request.query_params.get("book", "")).strip()
        profiles = sorted(self.app.profiles, key=lambda p: p.user_id)
        context: dict[str, Any] = {
            "title": "Compare methods",
            "readers": [(p.user_id, reader_label(p)) for p in profiles[:READER_OPTIONS]],
            "reader_count": len(profiles),
            "user": user,
            "asin": asin,
            "errors": {},
        }
        status = 200
        profile = None
        if user:
            try:
                profile = reader_profile(self.app, user)
            except GravityError as exc:
                context["errors"]["user"] = str(exc)
                status = http_error(exc).status
        if profile is not None:
            context["profile"] = profile_view(profile)
            context["books"] = [
                (b.parent_asin, f"{b.title or b.parent_asin} ({b.genre or 'no genre'})")
                for b in self.evaluation_pool().targets(profile)
            ]
            book = None
            if asin:
                try:
                    book = catalog_book(self.app, asin)
                except GravityError as exc:
                    context["errors"]["book"] = str(exc)
                    status = http_error(exc).status
            if book is not None:
                context.update(self._methods(profile, book))
                context["book"] = book
                if context["pending"]:
                    context["refresh"] = REFRESH_S
                    # An explicit URL without the fragment: refreshing /compare?...#method-x would be a
                    # same-document (fragment) navigation in browsers, which never reloads the page.
                    context["refresh_url"] = "/compare?" + urlencode({"user": user, "asin": book.parent_asin})
        return self.render(request, "compare.html", status, **context)

    def _methods(self, profile: profile_pb2.UserProfile, book: BookInput) -> dict[str, Any]:
        statuses = self.serving.methods()
        available = [s.name for s in statuses if s.available]
        descriptions = self.board.descriptions(profile, book, available)
        cards = [
            {
                "name": s.name,
                "about": s.description,
                "available": s.available,
                "entry": descriptions.get(s.name),
                # the original description is the book's own text: nothing to sample again
                "regenerable": s.available and s.name != names.ORIGINAL,
            }
            for s in statuses
        ]
        return {"cards": cards, "pending": sum(1 for d in descriptions.values() if d.state == PENDING)}

    async def regenerate(self, request: Request) -> Response:
        if not self.allowed(request):
            return self.render(request, "login.html", 401, title="Sign in")
        form = await self.form(request)
        if form is None:
            return self.render(
                request,
                "problem.html",
                403,
                title="This form expired",
                message="Reload the page and try again.",
            )
        user, asin, method = form.get("user", ""), form.get("asin", ""), form.get("method", "")
        try:
            self.serving.engine.check_method(method)
            self.board.regenerate(reader_profile(self.app, user), catalog_book(self.app, asin), method)
        except GravityError as exc:
            return self.render(
                request, "problem.html", http_error(exc).status, title="Cannot regenerate", message=str(exc)
            )
        query = urlencode({"user": user, "asin": asin})
        return RedirectResponse(f"/compare?{query}#method-{method}", status_code=303)

    async def failed(self, request: Request, exc: Exception) -> Response:
        """A bug: answered with a page that hides the details (Starlette re-raises it, so uvicorn's logger,
        which goes through structlog, logs it with its traceback)."""
        return self.render(
            request,
            "problem.html",
            500,
            title="Something went wrong",
            message=f"internal error ({type(exc).__name__}); see the generator's log",
        )

    def asgi(self) -> Starlette:
        static = StaticFiles(directory=str(resources.files("gravity_generator").joinpath("web/static")))
        routes = [
            Route("/", self.home),
            Route("/compare", self.compare),
            Route("/compare/login", self.login, methods=["GET", "POST"]),
            Route("/compare/regenerate", self.regenerate, methods=["POST"]),
            Mount("/static", static, name="static"),
        ]
        return Starlette(
            routes=routes,
            exception_handlers={Exception: self.failed},
            middleware=[
                Middleware(SecurityMiddleware, csrf_cookie=CSRF_COOKIE, secure_cookies=self.secure_cookies)
            ],
        )
