"""Counting what was skipped and why, so a run ends with a summary instead of a traceback or a silent drop."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Skip:
    reason: str
    detail: str
    source: str = ""
    line: int = 0
    record_id: str = ""

    def where(self) -> str:
        if self.source and self.line:
            return f"{self.source}:{self.line}"
        return self.source or self.record_id or "-"


class RecordError(Exception):
    """Raised by parsers for one bad record; the caller records it as a :class:`Skip` and moves on."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class SkipLog:
    """Collects skips: counts by reason, the first ``keep`` examples, and an optional per-skip hook (DLQ)."""

    keep: int = 200
    on_skip: Callable[[Skip], None] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[Skip] = field(default_factory=list)

    def add(self, reason: str, detail: str, source: str = "", line: int = 0, record_id: str = "") -> Skip:
        skip = Skip(reason, detail, source, line, record_id)
        self.counts[reason] += 1
        if len(self.examples) < self.keep:
            self.examples.append(skip)
        if self.on_skip is not None:
            self.on_skip(skip)
        return skip

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary_lines(self, limit: int = 10) -> list[str]:
        if not self.total:
            return ["nothing skipped"]
        lines = [f"skipped {self.total}: " + ", ".join(f"{r}={n}" for r, n in self.counts.most_common())]
        for s in self.examples[:limit]:
            lines.append(f"  {s.where()}: {s.reason}: {s.detail}")
        if len(self.examples) > limit or self.total > len(self.examples):
            lines.append(f"  ... {self.total - min(limit, len(self.examples))} more")
        return lines

    def extend(self, data: dict[str, Any]) -> None:
        """Fold in another log's :meth:`to_dict`: its counts, and its examples (each passed to ``on_skip``)."""
        for example in data.get("examples", []):
            skip = Skip(**example)
            if len(self.examples) < self.keep:
                self.examples.append(skip)
            if self.on_skip is not None:
                self.on_skip(skip)
        for reason, count in data.get("by_reason", {}).items():
            self.counts[reason] += int(count)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_reason": dict(self.counts),
            "examples": [asdict(s) for s in self.examples],
        }
