"""Who may see what in the study app: the administrator (password/token, a signed session cookie), CSRF
protection of every POST form (double-submit cookie), and the headers every page carries.

Participants are identified by the unguessable token in their link and see only their own pages. Pages send
``Referrer-Policy: no-referrer`` so a participant link never leaks to another site, and nothing is cached.
The mechanisms are gravity_core.web.security's (shared with the generator's compare page); this module
names the study's cookies.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp

from gravity_core.web import security as web
from gravity_core.web.security import CSRF_FIELD, SESSION_SECONDS, csrf_token

ADMIN_COOKIE = "gravity_study_admin"
CSRF_COOKIE = "gravity_study_csrf"
HEADERS = web.SECURITY_HEADERS

__all__ = [
    "ADMIN_COOKIE",
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "HEADERS",
    "SESSION_SECONDS",
    "AdminAuth",
    "SecurityMiddleware",
    "csrf_ok",
    "csrf_token",
]


class AdminAuth(web.SessionAuth):
    def __init__(self, admin_token: str, secret_key: str) -> None:
        if not admin_token:
            raise ValueError("an admin token is required")
        super().__init__(admin_token, secret_key, ADMIN_COOKIE, purpose="admin")

    def is_admin(self, request: Request) -> bool:
        return self.is_authorized(request)


def csrf_ok(request: Request, form: Mapping[str, object]) -> bool:
    return web.csrf_ok(request, form, CSRF_COOKIE)


class SecurityMiddleware(web.SecurityMiddleware):
    """Issues the study's CSRF cookie when missing and adds the security headers to every response."""

    def __init__(self, app: ASGIApp, secure_cookies: bool = False) -> None:
        super().__init__(app, CSRF_COOKIE, secure_cookies)
