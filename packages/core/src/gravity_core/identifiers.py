"""Identifiers that become file or directory names, checked in one place (issue 15: path confinement).

Cohort ids, adapter ids, run ids, report names and dataset names arrive in gRPC requests and Kafka records
and end up as path segments in the artifact store. Each is checked against :data:`SEGMENT` before it touches
the filesystem: letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters,
not ending in '.'. That admits no separator, no '..' segment, no absolute path and nothing a shell or a
filesystem reads specially, so an id can never name a place outside the directory it is joined to.
"""

from __future__ import annotations

import re

from gravity_core.errors import InvalidInput

SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RULE = "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending in '.'"


def is_segment(value: str) -> bool:
    """Whether ``value`` is safe as one path segment."""
    return bool(SEGMENT.fullmatch(value)) and not value.endswith(".")


def check_segment(field: str, value: str) -> str:
    """``value`` when it is a safe path segment; INVALID_ARGUMENT naming ``field`` otherwise."""
    if not is_segment(value):
        raise InvalidInput(field, f"{value[:64]!r} is not a valid id: use {RULE}")
    return value
