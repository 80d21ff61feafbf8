"""Protobuf (de)serialization for topic records, with the message type in a header.

A message with a ``cohort_id`` field also carries it in a ``cohort-id`` header, so a consumer can account a
record it cannot decode to its cohort (a cohort must still complete when one of its records is bad).
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from gravity_core.skips import RecordError

M = TypeVar("M", bound=Message)
CONTENT_TYPE = b"application/x-protobuf"


COHORT_HEADER = "cohort-id"


def encode(message: Message) -> tuple[bytes, list[tuple[str, bytes]]]:
    headers = [("content-type", CONTENT_TYPE), ("message-type", message.DESCRIPTOR.full_name.encode())]
    cohort_id = getattr(message, "cohort_id", "") if "cohort_id" in message.DESCRIPTOR.fields_by_name else ""
    if cohort_id:
        headers.append((COHORT_HEADER, str(cohort_id).encode()))
    return message.SerializeToString(deterministic=True), headers


def header(headers: list[tuple[str, bytes]] | None, name: str) -> str:
    """A header's value as text ('' when absent)."""
    for key, value in headers or []:
        if key == name:
            return bytes(value).decode(errors="replace")
    return ""


def decode(data: bytes | None, cls: type[M], headers: list[tuple[str, bytes]] | None = None) -> M:
    """Parse a record value; a wrong message-type header or undecodable bytes is a RecordError."""
    expected = cls.DESCRIPTOR.full_name.encode()
    for key, value in headers or []:
        if key == "message-type" and value != expected:
            raise RecordError(
                "wrong_message_type", f"expected {expected.decode()}, got {value.decode(errors='replace')}"
            )
    if data is None:
        raise RecordError("empty_record", "record has no value (tombstone)")
    msg = cls()
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:
        raise RecordError("undecodable", f"not a {expected.decode()}: {exc}") from None
    return msg
