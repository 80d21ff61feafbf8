"""generations.jsonl rows -> (user, book) units ready for judging, with every bad row counted.

A unit is one reader and one target book: the original description plus each method's output. Rows that
cannot be judged are recorded in the SkipLog with file and line (or request position): missing fields,
empty text, unknown method, duplicates (the first row wins), units without an original, units with no
method output, and readers without a profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gravity.v1 import judge_pb2
from gravity_core import genres, names
from gravity_core.errors import InvalidInput
from gravity_core.proto_io import read_jsonl
from gravity_core.skips import SkipLog
from gravity_judge import methods as m
from gravity_judge.persona import Persona

UNKNOWN_GENRE = "unknown"

PersonaLookup = Callable[[str], Persona | None]


@dataclass
class Unit:
    user_id: str
    parent_asin: str
    book_title: str
    genre: str
    genre_group: str
    original: str
    # method -> generated text (the original excluded)
    outputs: dict[str, str]
    persona: Persona

    @property
    def key(self) -> str:
        return f"{self.user_id}/{self.parent_asin}"

    @property
    def country(self) -> str:
        return self.persona.group_country

    @property
    def genre_cluster(self) -> str:
        """The paper's book category (Figures 3 and 4), from core's mapping of Amazon categories."""
        return genres.cluster_of(self.genre, self.genre_group)

    @property
    def fiction_side(self) -> str:
        """ "fiction", "non-fiction", or "unknown" (Figure 3's split)."""
        return genres.side_of(self.genre_cluster)


@dataclass
class EvaluationSet:
    units: list[Unit]
    # Every method with at least one output, in report order (the original excluded).
    methods: list[str]
    rows_read: int = 0
    rows_used: int = 0
    # Rows of methods left out on purpose (--methods); not errors, so not in the skip log.
    rows_excluded: int = 0
    skips: SkipLog = field(default_factory=SkipLog)

    @property
    def users(self) -> int:
        return len({u.user_id for u in self.units})

    @property
    def books(self) -> int:
        return len({u.parent_asin for u in self.units})


@dataclass
class _Row:
    source: str
    line: int
    generation: judge_pb2.Generation


def rows_from_file(path: str | Path, skips: SkipLog) -> Iterable[_Row]:
    for number, generation in read_jsonl(path, judge_pb2.Generation, skips):
        yield _Row(str(path), number, generation)


def rows_from_request(generations: Sequence[judge_pb2.Generation], source: str = "request") -> Iterable[_Row]:
    for i, generation in enumerate(generations, start=1):
        yield _Row(source, i, generation)


def assemble(
    rows: Iterable[_Row],
    personas: PersonaLookup,
    skips: SkipLog,
    only_methods: Sequence[str] = (),
    extra_methods: Sequence[str] = (),
) -> EvaluationSet:
    """Group rows into units. ``only_methods`` keeps just those methods (plus the original)."""
    wanted = set(only_methods)
    by_unit: dict[tuple[str, str], dict[str, _Row]] = {}
    rows_read = rows_excluded = 0
    for row in rows:
        rows_read += 1
        g = row.generation
        try:
            method = names.method_name(g, required=False)
        except InvalidInput as exc:
            skips.add("bad_record", str(exc), row.source, row.line, f"{g.user_id}/{g.parent_asin}")
            continue
        record = f"{g.user_id}/{g.parent_asin}/{method}"
        given = {"user_id": g.user_id, "parent_asin": g.parent_asin, "method": method}
        missing = [name for name, value in given.items() if not value.strip()]
        if missing:
            skips.add(
                "missing_field", f"generation has no {', '.join(missing)}", row.source, row.line, record
            )
            continue
        if not g.text.strip():
            skips.add("empty_text", f"method {method!r} produced no text", row.source, row.line, record)
            continue
        if m.kind_of(method, extra_methods) is None:
            skips.add(
                "unknown_method",
                f"method {method!r} is not a known method (add it to judge.extra_methods to judge it)",
                row.source,
                row.line,
                record,
            )
            continue
        if wanted and method != m.ORIGINAL and method not in wanted:
            rows_excluded += 1
            continue
        unit = by_unit.setdefault((g.user_id, g.parent_asin), {})
        if method in unit:
            first = unit[method]
            skips.add(
                "duplicate_row",
                f"method {method!r} already given at line {first.line}; the first row is used",
                row.source,
                row.line,
                record,
            )
            continue
        unit[method] = row

    units: list[Unit] = []
    rows_used = 0
    for (user_id, asin), rows_by_method in by_unit.items():
        first = min(rows_by_method.values(), key=lambda r: r.line)
        record = f"{user_id}/{asin}"
        if m.ORIGINAL not in rows_by_method:
            skips.add(
                "missing_original",
                f"{len(rows_by_method)} generation(s) for this (user, book) but no 'original' row to compare with",
                first.source,
                first.line,
                record,
            )
            continue
        if len(rows_by_method) == 1:
            skips.add(
                "no_methods",
                "only the original description; nothing to judge",
                first.source,
                first.line,
                record,
            )
            continue
        persona = personas(user_id)
        if persona is None:
            skips.add(
                "missing_profile",
                f"no profile for user {user_id!r}; {len(rows_by_method)} generation(s) not judged",
                first.source,
                first.line,
                record,
            )
            continue
        original = rows_by_method[m.ORIGINAL].generation
        units.append(
            Unit(
                user_id=user_id,
                parent_asin=asin,
                book_title=original.book_title,
                genre=original.genre or UNKNOWN_GENRE,
                genre_group=original.genre_group or UNKNOWN_GENRE,
                original=original.text,
                outputs={k: r.generation.text for k, r in rows_by_method.items() if k != m.ORIGINAL},
                persona=persona,
            )
        )
        rows_used += len(rows_by_method)
    present = m.ordered({k for u in units for k in u.outputs})
    return EvaluationSet(units, present, rows_read, rows_used, rows_excluded, skips)
