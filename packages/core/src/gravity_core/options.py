"""Option values into settings: comma-separated lists, dotted keys into nested tables, deep merges.

Every CLI and every layer of configuration (TOML, environment, --set, recipe overrides) goes through these,
so ``a.b.c=1`` means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gravity_core.errors import InvalidInput


def split_list(*values: str | Iterable[str] | None) -> list[str]:
    """Comma-separated and/or repeated option values as one list: ``--users a,b --users c`` -> [a, b, c]."""
    out: list[str] = []
    for value in values:
        if value is None:
            continue
        for part in [value] if isinstance(value, str) else value:
            out += [v.strip() for v in part.split(",") if v.strip()]
    return out


def nest_dotted(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "a.c": {"d.e": 2}}`` -> ``{"a": {"b": 1, "c": {"d": {"e": 2}}}}``.

    Raises ValueError naming the key when a dotted key runs through a value that is not a table.
    """
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = str(key).split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ValueError(f"{key}: {part} is not a table")
            node = nxt
        nested = nest_dotted(value) if isinstance(value, Mapping) else value
        if isinstance(nested, dict) and isinstance(node.get(parts[-1]), dict):
            deep_merge(node[parts[-1]], nested)
        else:
            node[parts[-1]] = nested
    return out


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into ``base`` in place (tables merge, anything else replaces); returns ``base``."""
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
    return base


M = TypeVar("M", bound=BaseModel)


def apply_options(model: M, **options: Any) -> M:
    """``model`` with the command-line ``options`` applied, validated like the configuration file is.

    Options left unset (``None``) keep the configured value; dotted names reach into nested tables. A value the
    settings model rejects is an :class:`InvalidInput` naming the flag (``--min-reviews``), never a copy that
    skipped validation."""
    given = {name: value for name, value in options.items() if value is not None}
    data = deep_merge(model.model_dump(), nest_dotted(given))
    try:
        return type(model).model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        option = "--" + location.replace("_", "-") if location else "options"
        raise InvalidInput(option, first["msg"]) from None
