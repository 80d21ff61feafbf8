"""Who may see what: the administrator (password/token, a signed session cookie), CSRF protection of every
POST form (double-submit cookie), and the headers every page carries.

Participants are identified by the unguessable token in their link and see only their own pages. Pages send
``Referrer-Policy: no-referrer`` so a participant link never leaks to another site, and nothing is cached.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_COOKIE = "gravity_study_admin"
CSRF_COOKIE = "gravity_study_csrf"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600
HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class AdminAuth:
    def __init__(self, admin_token: str, secret_key: str) -> None:
        if not admin_token:
            raise ValueError("an admin token is required")
        self._token = admin_token.encode()
        self._key = secret_key.encode()

    def check_password(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def _sign(self, issued: str) -> str:
        return hmac.new(self._key, f"admin:{issued}".encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        issued = str(int(time.time()))
        return f"{issued}.{self._sign(issued)}"

    def valid_session(self, value: str | None) -> bool:
        if not value or "." not in value:
            return False
        issued, signature = value.split(".", 1)
        if not issued.isdigit() or not hmac.compare_digest(signature, self._sign(issued)):
            return False
        return 0 <= time.time() - int(issued) <= SESSION_SECONDS

    def is_admin(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer ") and self.check_password(header[7:].strip()):
            return True
        return self.valid_session(request.cookies.get(ADMIN_COOKIE))


def csrf_token(request: Request) -> str:
    return str(request.state.csrf)


def csrf_ok(request: Request, form: Mapping[str, object]) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    return bool(cookie) and isinstance(sent, str) and hmac.compare_digest(cookie, sent)


class SecurityMiddleware:
    """Issues the CSRF cookie when missing and adds the security headers to every response."""

    def __init__(self, app: ASGIApp, secure_cookies: bool = False) -> None:
        self.app = app
        self.secure = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        existing = request.cookies.get(CSRF_COOKIE, "")
        token = existing if len(existing) == 43 else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf"] = token

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if token != existing:
                    flags = "Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if self.secure else "")
                    headers.append("set-cookie", f"{CSRF_COOKIE}={token}; {flags}")
            await send(message)

        await self.app(scope, receive, send_with_headers)
