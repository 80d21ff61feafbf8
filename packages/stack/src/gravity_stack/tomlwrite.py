"""A minimal TOML writer for the configuration files the demo generates (tables of scalars and lists)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(data: Mapping[str, Any]) -> str:
    lines: list[str] = []

    def table(prefix: str, node: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, Mapping) or not v or _inline(v)}
        tables = {k: v for k, v in node.items() if k not in scalars}
        if prefix and scalars:
            lines.append(f"\n[{prefix}]")
        for k, v in scalars.items():
            lines.append(
                f"{json.dumps(k) if not k.replace('_', '').replace('-', '').isalnum() else k} = {_value(v)}"
            )
        for k, v in tables.items():
            table(f"{prefix}.{k}" if prefix else k, v)

    table("", data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _inline(v: Mapping[str, Any]) -> bool:
    # maps of scalars whose keys are not identifiers (e.g. dataset -> recipe) read better inline
    return all(not isinstance(x, Mapping) for x in v.values()) and any(not str(k).isidentifier() for k in v)
