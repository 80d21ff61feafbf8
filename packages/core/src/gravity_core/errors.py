"""Errors that carry enough context to become a clear message or a gRPC status."""

from __future__ import annotations

import errno


class GravityError(Exception):
    """Base class: an expected failure with a message fit for users (no traceback needed)."""


class InvalidInput(GravityError):
    """A request or input field is malformed. ``field`` names it (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[GravityError], tuple[str, str]]:
        return type(self), (self.field, self.message)  # pickled as built (a worker process's error)


class NotFound(GravityError):
    """Something a request refers to does not exist. ``field`` names the reference."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[GravityError], tuple[str, str]]:
        return type(self), (self.field, self.message)  # pickled as built (a worker process's error)


class Unavailable(GravityError):
    """A dependency (broker, model endpoint) is down; retrying later may succeed."""


class RateLimited(Unavailable):
    """A dependency refused for now because of load or quota (HTTP 429); retry later (RESOURCE_EXHAUSTED).

    ``retry_after_s`` goes out as HTTP's Retry-After and gRPC's ``retry-after-ms`` trailer: it is what tells
    a client this RESOURCE_EXHAUSTED is worth retrying (gRPC also uses the code for its message size limits).
    """

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[type[GravityError], tuple[str, float]]:
        return type(self), (str(self), self.retry_after_s)


class ConfigError(GravityError):
    """The configuration file or environment is invalid."""


class Unsupported(GravityError):
    """The backend or configuration cannot do what was asked."""


# OS errors that say "not now" rather than "never": a full or failing disk, a busy or stale (NFS) file, a
# timeout. A record that hit one is retried, not dead-lettered.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EIO,
        errno.EAGAIN,
        errno.EBUSY,
        errno.ETIMEDOUT,
        errno.ESTALE,
        errno.EMFILE,
    }
)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same work later may succeed: a dependency down or rate-limiting, a disk full, a
    lock held, or a configuration the operator must fix (a refused API key) — not a bad record."""
    if isinstance(exc, Unavailable | ConfigError | TimeoutError):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    # filelock.Timeout: another process holds the lock for now
    return type(exc).__name__ == "Timeout" and type(exc).__module__.startswith("filelock")
