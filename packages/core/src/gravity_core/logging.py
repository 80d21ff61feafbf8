"""structlog logging with user ids hashed under a secret key and secrets redacted, for our lines and everyone's.

Every service and batch command calls :func:`configure_logging` (or :func:`configure_from_settings`) once.
Our events and third-party libraries' stdlib log records (and Python warnings) go through one formatter, so
a service's log is JSON line by line and an interactive terminal gets readable console lines (``auto``).

Privacy and secrets, applied to every event, nested values included:

* user ids (keys ``user_id``, ``user``, ``user_ids``) become ``u:`` + 12 hex of an HMAC-SHA256 under a secret
  key: stable across services (so logs correlate) but not reversible against public reviewer ids without the
  key. The key comes from ``logging.user_id_key`` (env ``GRAVITY_LOGGING__USER_ID_KEY``, a Kubernetes Secret),
  else from a per-installation key file ``$GRAVITY_HOME/log-key`` created on first use (mode 0600);
* values under keys that look like credentials become ``***``; inside any string, registered secret values
  (the configured API keys, tokens and passwords), bearer tokens, ``key=value`` credentials, OpenAI-style
  keys and the user:password part of URLs are replaced by ``***``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_USER_KEYS = frozenset({"user_id", "user", "user_ids"})
_SECRET_KEY = re.compile(
    r"(api[_-]?key|token|secret|password|passwd|authorization|credential|cookie)", re.IGNORECASE
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@")
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}")
_KEY_VALUE = re.compile(
    r"(?i)\b(api[_-]?key|access[_-]?token|auth[_-]?token|token|secret|password|passwd)(\"?\s*[=:]\s*\"?)"
    r"([^\s,;&'\"}]+)"
)
_OPENAI_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}")
_MAX_DEPTH = 6
_NOISY = ("kafka", "urllib3", "httpx", "httpcore", "transformers", "datasets", "filelock", "openai")

_state = threading.Lock()
_configured = False
_key: bytes | None = None
_secrets: set[str] = set()


# ------------------------------------------------------------------ user ids
def _default_key() -> bytes:
    from gravity_core.paths import gravity_home

    path = gravity_home() / "log-key"
    try:
        return bytes.fromhex(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return bytes.fromhex(path.read_text(encoding="utf-8").strip())
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key.hex())
    return key


def set_user_id_key(key: str | bytes | None) -> None:
    """Use ``key`` for user-id hashing (None: the per-installation key file)."""
    global _key
    with _state:
        _key = key.encode("utf-8") if isinstance(key, str) else key


def hash_user_id(user_id: str) -> str:
    """Stable, keyed, non-reversible short id for logs ("u:" + 12 hex characters of HMAC-SHA256)."""
    global _key
    with _state:
        if _key is None:
            _key = _default_key()
        key = _key
    return "u:" + hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


# ------------------------------------------------------------------- secrets
def register_secrets(values: Iterable[str | None]) -> None:
    """Secret values (API keys, tokens, passwords) to redact wherever they appear in a log line."""
    with _state:
        _secrets.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    with _state:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, "***")
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _AUTH_HEADER.sub(r"\1 ***", text)
    text = _KEY_VALUE.sub(r"\1\2***", text)
    return _OPENAI_KEY.sub("***", text)


def _clean(value: Any, key: str = "", depth: int = 0) -> Any:
    if key and _SECRET_KEY.search(key) and value is not None and not isinstance(value, (bool, int, float)):
        return "***"
    if key in _USER_KEYS:
        if isinstance(value, str):
            return hash_user_id(value)
        if isinstance(value, (list, tuple, set)):
            return [hash_user_id(str(v)) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _clean(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, "", depth + 1) for v in value]
    return value


def _scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event.keys()):
        event[key] = _clean(event[key], key)
    return event


# --------------------------------------------------------------- configuring
def _renderer(fmt: str, stream: Any) -> Any:
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


def configure_logging(
    level: str = "INFO", fmt: str = "json", stream: Any = None, user_id_key: str | None = None
) -> None:
    """Route structlog events, stdlib log records and warnings to ``stream`` (stderr), scrubbed, as JSON
    lines or console text (``auto``: console on a terminal, JSON otherwise)."""
    global _configured
    stream = stream or sys.stderr
    if user_id_key is not None:
        set_user_id_key(user_id_key)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # a traceback is text like any other: scrubbed after it is written out, not before
            structlog.processors.format_exc_info,
            _scrub,
            _renderer(fmt, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # Third-party libraries speak only when they warn; our own loggers at the configured level.
    root.setLevel(logging.WARNING)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.captureWarnings(True)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_OwnLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    # An exception nobody caught (a worker thread's, or the process's last) is logged like everything else,
    # as one scrubbed line, instead of Python's raw traceback on stderr.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    _configured = True


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    get_logger(__name__).critical("uncaught_exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else None
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    get_logger(__name__).critical("thread_crashed", thread=thread, exc_info=exc_info)


class _OwnLoggerFactory(structlog.stdlib.LoggerFactory):
    """Our loggers pass every level the bound logger lets through (the root stays at WARNING for others)."""

    def __call__(self, *args: Any) -> logging.Logger:
        logger = super().__call__(*args)
        logger.setLevel(logging.DEBUG)
        return logger


def configure_from_settings(settings: Any, level: str | None = None) -> None:
    """:func:`configure_logging` from a Settings object: its level, format and user-id key, and every secret
    it holds registered for redaction."""
    cfg = settings.logging
    key = cfg.user_id_key.get_secret_value() if cfg.user_id_key is not None else None
    register_secrets(secret_values(settings))
    configure_logging(level or cfg.level, cfg.format, user_id_key=key)


def secret_values(settings: Any) -> list[str]:
    """The secret values in ``settings``: every SecretStr anywhere in it, and the OpenAI key from the env."""
    from pydantic import BaseModel, SecretStr

    found: list[str] = []

    def walk(node: Any, depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            return
        if isinstance(node, SecretStr):
            found.append(node.get_secret_value())
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name), depth + 1)
            for value in (node.model_extra or {}).values():
                walk(value, depth + 1)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value, depth + 1)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value, depth + 1)

    walk(settings)
    found.append(os.environ.get("OPENAI_API_KEY", ""))
    return [v for v in found if v]


def get_logger(name: str | None = None, **context: Any) -> Any:
    if not _configured:
        configure_logging()
    log = structlog.get_logger(name)
    return log.bind(**context) if context else log
