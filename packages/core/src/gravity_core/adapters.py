"""Adapter directories: a standard PEFT adapter plus ``gravity_adapter.json`` (the AdapterRef) and a model card.

The trainer writes them; the generator finds them by scanning a directory (batch) or from AdapterRefs on
gravity.adapters.v1 (service).
"""

from __future__ import annotations

import os
from pathlib import Path

from gravity.v1 import training_pb2
from gravity_core import names
from gravity_core.errors import InvalidInput
from gravity_core.files import write_text
from gravity_core.proto_io import from_dict, to_json
from gravity_core.skips import SkipLog

ADAPTER_META = "gravity_adapter.json"
PEFT_FILES = ("adapter_config.json",)


def write_adapter_ref(directory: str | Path, ref: training_pb2.AdapterRef) -> Path:
    path = Path(directory) / ADAPTER_META
    write_text(path, to_json(ref) + "\n")
    return path


def read_adapter_ref(directory: str | Path) -> training_pb2.AdapterRef:
    import json

    from google.protobuf import json_format

    path = Path(directory) / ADAPTER_META
    try:
        return from_dict(json.loads(path.read_text(encoding="utf-8")), training_pb2.AdapterRef)
    except (OSError, ValueError, json_format.ParseError) as exc:
        raise InvalidInput("adapters", f"{path} is not a readable adapter description: {exc}") from None


def is_adapter_dir(directory: str | Path) -> bool:
    d = Path(directory)
    return all((d / f).is_file() for f in PEFT_FILES) and (d / ADAPTER_META).is_file()


def find_adapters(
    root: str | Path, max_depth: int = 2, skips: SkipLog | None = None
) -> dict[str, tuple[Path, training_pb2.AdapterRef]]:
    """method -> (adapter dir, ref) for every adapter directory under ``root`` (the newest wins per method).

    With ``skips``, an unreadable gravity_adapter.json is recorded there and the scan goes on; without, it
    raises InvalidInput.
    """
    base = Path(root)
    found: dict[str, tuple[Path, training_pb2.AdapterRef]] = {}
    for d in _directories(base, max_depth):
        if not is_adapter_dir(d):
            continue
        try:
            ref = read_adapter_ref(d)
            method = names.method_name(ref, required=False)
        except InvalidInput as exc:
            if skips is None:
                raise
            skips.add("bad_adapter_meta", str(exc), str(d / ADAPTER_META))
            continue
        current = found.get(method)
        if current is None or ref.created_at_ms >= current[1].created_at_ms:
            found[method] = (d, ref)
    return found


def _directories(base: Path, max_depth: int) -> list[Path]:
    """``base`` and the directories up to ``max_depth`` below it, shallowest first. os.walk passes over one
    that is removed while it looks (the trainer swapping in a new version of an adapter)."""
    found = [(0, base)]
    for directory, subdirectories, _ in os.walk(base):
        depth = len(Path(directory).relative_to(base).parts) + 1
        found += [(depth, Path(directory) / name) for name in subdirectories]
        if depth >= max_depth:
            subdirectories.clear()  # os.walk descends into what is left here
    return [path for _, path in sorted(found)]
