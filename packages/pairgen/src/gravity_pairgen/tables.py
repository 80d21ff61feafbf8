"""Records from tabular files (JSON Lines, JSON arrays, CSV, Parquet) with their line or row numbers.

External item banks (TRAIT, Big5Chat) ship in all of these formats. A file that lacks a required column
is a configuration error naming the file and the column; a single bad row is skipped and recorded with
its file and line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gravity_core.amazon import iter_json_lines, open_text
from gravity_core.errors import ConfigError
from gravity_core.skips import SkipLog

Row = dict[str, Any]


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def read_rows(path: str | Path, skips: SkipLog) -> tuple[list[str], Iterator[tuple[int, Row]]]:
    """(column names, iterator of (line/row number, record)). Columns come from the header, the schema, or
    the first record of a JSON file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: file does not exist")
    kind = _suffix(p)
    if kind == ".csv":
        return _csv(p)
    if kind == ".parquet":
        return _parquet(p)
    if kind == ".json":
        return _json_array(p, skips)
    if kind in (".jsonl", ".ndjson"):
        return _jsonl(p, skips)
    raise ConfigError(f"{p}: unsupported file type {kind or '(none)'} (use .jsonl, .json, .csv or .parquet)")


def require_columns(path: str | Path, columns: Sequence[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise ConfigError(
            f"{path}: missing column {missing[0]!r}"
            + (f" (and {', '.join(repr(m) for m in missing[1:])})" if len(missing) > 1 else "")
            + f"; the file has {', '.join(columns) or 'no columns'}"
        )


def _csv(path: Path) -> tuple[list[str], Iterator[tuple[int, Row]]]:
    with open_text(path) as raw:
        header = next(csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")), [])
    columns = [h.strip() for h in header]

    def rows() -> Iterator[tuple[int, Row]]:
        with open_text(path) as raw:
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
            reader.fieldnames = columns
            next(reader, None)  # the header itself
            for row in reader:
                yield reader.line_num, dict(row)

    return columns, rows()


def _parquet(path: Path) -> tuple[list[str], Iterator[tuple[int, Row]]]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ConfigError(f"{path}: not a readable Parquet file ({exc})") from None
    columns = list(file.schema_arrow.names)

    def rows() -> Iterator[tuple[int, Row]]:
        number = 0
        for batch in file.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                number += 1
                yield number, row

    return columns, rows()


def _json_array(path: Path, skips: SkipLog) -> tuple[list[str], Iterator[tuple[int, Row]]]:
    try:
        with open_text(path) as raw:
            data = json.load(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict):  # {"data": [...]} or {id: record}
        data = data.get("data", data.get("rows", list(data.values())))
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a JSON array of records")
    records = [r for r in data if isinstance(r, dict)]
    columns = list(records[0]) if records else []

    def rows() -> Iterator[tuple[int, Row]]:
        for number, record in enumerate(data, start=1):
            if isinstance(record, dict):
                yield number, record
            else:
                skips.add("malformed_record", "array element is not an object", str(path), number)

    return columns, rows()


def _jsonl(path: Path, skips: SkipLog) -> tuple[list[str], Iterator[tuple[int, Row]]]:
    first = next(iter_json_lines(path, SkipLog()), None)
    columns = list(first[1]) if first else []
    return columns, iter_json_lines(path, skips)
