"""Errors that carry enough context to become a clear message or a gRPC status."""

from __future__ import annotations


class GravityError(Exception):
    """Base class: an expected failure with a message fit for users (no traceback needed)."""


class InvalidInput(GravityError):
    """A request or input field is malformed. ``field`` names it (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(GravityError):
    """Something a request refers to does not exist. ``field`` names the reference."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Unavailable(GravityError):
    """A dependency (broker, model endpoint) is down; retrying later may succeed."""


class ConfigError(GravityError):
    """The configuration file or environment is invalid."""


class Unsupported(GravityError):
    """The backend or configuration cannot do what was asked."""
