"""Protobuf messages as JSON Lines (the protobuf JSON mapping, proto field names), for batch files.

profiles.jsonl holds one gravity.v1.UserProfile per line; generations.jsonl one gravity.v1.Generation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from gravity_core.amazon import iter_json_lines
from gravity_core.files import atomic_open
from gravity_core.skips import SkipLog

M = TypeVar("M", bound=Message)


def to_json(message: Message) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None, sort_keys=True)


def to_dict(message: Message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def from_dict(data: dict, cls: type[M]) -> M:
    """Parse the JSON mapping; unknown fields are an error (a typo must not pass silently)."""
    return json_format.ParseDict(data, cls())


def write_jsonl(messages: Iterable[Message], path: str | Path) -> int:
    """Write atomically (temp file + rename); returns the number of lines."""
    n = 0
    with atomic_open(path, "w", encoding="utf-8") as f:
        for message in messages:
            f.write(to_json(message) + "\n")
            n += 1
    return n


def append_jsonl(message: Message, path: str | Path) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(to_json(message) + "\n")
        f.flush()


def read_jsonl(path: str | Path, cls: type[M], skips: SkipLog) -> Iterator[tuple[int, M]]:
    """(line number, message) per valid line; bad lines are recorded in ``skips`` with file and line."""
    for number, obj in iter_json_lines(path, skips):
        try:
            yield number, from_dict(obj, cls)
        except json_format.ParseError as exc:
            skips.add("bad_record", f"not a {cls.DESCRIPTOR.name}: {exc}", str(path), number)
