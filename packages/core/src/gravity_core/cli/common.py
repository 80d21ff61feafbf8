"""Helpers every subcommand uses: settings from --config, progress bars, a final summary."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from gravity_core.config import Settings, load_settings
from gravity_core.logging import configure_from_settings

T = TypeVar("T")


@dataclass
class CliContext:
    config_path: str | None = None
    log_level: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path, overrides=self.overrides or None)
            configure_from_settings(self._settings, self.log_level)
        return self._settings


pass_cli = click.make_pass_decorator(CliContext, ensure=True)


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """A tqdm bar on stderr (quiet when stderr is not a terminal, unless GRAVITY_PROGRESS=1)."""
    import os

    from tqdm import tqdm

    disable = not (sys.stderr.isatty() or os.environ.get("GRAVITY_PROGRESS") == "1")
    yield from tqdm(
        items, total=total, desc=desc, unit=unit, file=sys.stderr, disable=disable, dynamic_ncols=True
    )


def summary_table(title: str, rows: Sequence[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    """A plain-text table for end-of-run summaries."""
    table = [list(map(str, headers))] if headers else []
    table += [[_fmt(c) for c in row] for row in rows]
    if not table:
        return f"{title}: (empty)"
    widths = [max(len(r[i]) for r in table if i < len(r)) for i in range(max(len(r) for r in table))]
    lines = [title]
    for k, row in enumerate(table):
        lines.append("  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if headers and k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
