"""structlog JSON logging with user ids hashed and secrets redacted.

Every service and batch command calls :func:`configure_logging` once. Log events may carry ``user_id``;
it is replaced by a short stable hash so logs can be correlated without exposing the id. Keys that look
like credentials are redacted whatever their value, and pydantic ``SecretStr`` values never render.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_USER_KEYS = frozenset({"user_id", "user", "user_ids"})
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization|credential)", re.IGNORECASE)
_configured = False


def hash_user_id(user_id: str) -> str:
    """Stable, non-reversible short id for logs ("u:" + 12 hex chars of SHA-256)."""
    return "u:" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:12]


def _hash_user_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _USER_KEYS & event.keys():
        value = event[key]
        if isinstance(value, str):
            event[key] = hash_user_id(value)
        elif isinstance(value, (list, tuple, set)):
            event[key] = [hash_user_id(str(v)) for v in value]
    return event


def _redact_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event.keys()):
        if _SECRET_KEY.search(key) and event[key] is not None:
            event[key] = "***"
    return event


def configure_logging(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr) as JSON lines or console text."""
    global _configured
    stream = stream or sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _hash_user_ids,
            _redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through stdlib logging; keep them quiet unless they warn.
    logging.basicConfig(
        stream=stream, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    for noisy in ("kafka", "urllib3", "httpx", "transformers", "datasets", "filelock"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    _configured = True


def get_logger(name: str | None = None, **context: Any) -> Any:
    if not _configured:
        configure_logging()
    log = structlog.get_logger(name)
    return log.bind(**context) if context else log
