"""Who may see what on a GRAVITY web page, and the headers every page carries.

* a bearer token (``Authorization: Bearer ...``) compared in constant time, as the gRPC services do;
* a signed, HttpOnly, SameSite=Strict session cookie for browsers, issued once the token (or a password)
  was given to a login form: ``<issued>.<HMAC(key, purpose:issued)>``, valid for ``lifetime_s``;
* CSRF protection of every POST form (double-submit cookie);
* a strict Content-Security-Policy (no scripts at all, styles from the site only), no referrer, no framing,
  nothing cached.
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

CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ('' when there is none)."""
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so response times do not leak how much of a secret was right."""
    return hmac.compare_digest(given.encode(), expected.encode())


class SessionAuth:
    """A secret (token or password) checked in constant time, and browser sessions signed with ``secret_key``."""

    def __init__(
        self,
        secret: str,
        secret_key: str,
        cookie: str,
        purpose: str = "admin",
        lifetime_s: int = SESSION_SECONDS,
    ) -> None:
        if not secret:
            raise ValueError("a token or password is required")
        self._secret = secret
        self._key = secret_key.encode()
        self.cookie = cookie
        self.purpose = purpose
        self.lifetime_s = lifetime_s

    def check_password(self, given: str) -> bool:
        return same_secret(given, self._secret)

    def _sign(self, issued: str) -> str:
        return hmac.new(self._key, f"{self.purpose}:{issued}".encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        issued = str(int(time.time()))
        return f"{issued}.{self._sign(issued)}"

    def valid_session(self, value: str | None) -> bool:
        if not value or "." not in value:
            return False
        issued, signature = value.split(".", 1)
        if not issued.isdigit() or not hmac.compare_digest(signature, self._sign(issued)):
            return False
        return 0 <= time.time() - int(issued) <= self.lifetime_s

    def is_authorized(self, request: Request) -> bool:
        """A valid bearer token or a valid session cookie."""
        token = bearer_token(request)
        if token and self.check_password(token):
            return True
        return self.valid_session(request.cookies.get(self.cookie))


def derived_key(secret: str, purpose: str) -> str:
    """A signing key derived from a shared secret: every replica that knows the secret accepts the same
    sessions, and rotating the secret ends them all."""
    return hmac.new(secret.encode(), f"gravity-session-key:{purpose}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    return str(request.state.csrf)


def csrf_ok(request: Request, form: Mapping[str, object], cookie: str) -> bool:
    sent_cookie = request.cookies.get(cookie, "")
    sent = form.get(CSRF_FIELD)
    return bool(sent_cookie) and isinstance(sent, str) and hmac.compare_digest(sent_cookie, sent)


class SecurityMiddleware:
    """Issues the CSRF cookie when missing and adds the security headers to every response."""

    def __init__(self, app: ASGIApp, csrf_cookie: str, secure_cookies: bool = False) -> None:
        self.app = app
        self.csrf_cookie = csrf_cookie
        self.secure = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        existing = request.cookies.get(self.csrf_cookie, "")
        token = existing if len(existing) == 43 else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf"] = token

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if token != existing:
                    flags = "Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if self.secure else "")
                    headers.append("set-cookie", f"{self.csrf_cookie}={token}; {flags}")
            await send(message)

        await self.app(scope, receive, send_with_headers)
