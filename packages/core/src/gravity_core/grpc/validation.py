"""Request validation that names the offending field (answered as INVALID_ARGUMENT by the scaffold)."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from gravity_core.errors import InvalidInput


def require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise InvalidInput(field, message)


def require_field(message: Message, path: str) -> Any:
    """Return the value at dotted ``path``; INVALID_ARGUMENT naming it when missing or empty."""
    node: Any = message
    walked = []
    for part in path.split("."):
        walked.append(part)
        if isinstance(node, Message) and node.DESCRIPTOR.fields_by_name.get(part) is None:
            raise InvalidInput(".".join(walked), f"{node.DESCRIPTOR.name} has no field {part!r}")
        field_desc = node.DESCRIPTOR.fields_by_name[part]
        if field_desc.message_type is not None and not _is_repeated(field_desc) and not node.HasField(part):
            raise InvalidInput(".".join(walked), "is required")
        node = getattr(node, part)
    if node in ("", 0, None) or (
        hasattr(node, "__len__") and not isinstance(node, Message) and len(node) == 0
    ):
        raise InvalidInput(path, "is required")
    return node


def _is_repeated(field_desc: Any) -> bool:
    repeated = getattr(field_desc, "is_repeated", None)  # protobuf >= 6 dropped FieldDescriptor.label
    if repeated is not None:
        return bool(repeated)
    return bool(field_desc.label == field_desc.LABEL_REPEATED)
