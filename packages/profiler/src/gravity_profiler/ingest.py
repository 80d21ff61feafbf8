"""IngestRecords: raw Amazon-format lines streamed over gRPC -> queued per-user work.

Lines arrive as review lines, metadata lines and demographics CSV rows (header first), in any order.
Metadata goes into the service's persistent catalog, reviews into a scratch spool, demographics into the
spool too; once the stream ends, users with enough reviews of known books are returned as UserInputs.
Every bad line is recorded with its source and line number (and, in the service, dead-lettered with the
raw bytes as payload).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from gravity.v1 import common_pb2, profile_pb2
from gravity_core.amazon import BookRecord, parse_book, parse_demographics_row, parse_json_line, parse_review
from gravity_core.catalog import REFUSE, Catalog
from gravity_core.logging import get_logger
from gravity_core.skips import RecordError, SkipLog
from gravity_profiler.inputs import UserInput
from gravity_profiler.spool import ReviewSpool

# Reasons that describe a user rather than a line.
USER_REASONS = frozenset({"below_threshold"})


log = get_logger(__name__)


@dataclass
class IngestOutcome:
    cohort_id: str
    qualifying: list[str]
    lines_read: int
    skips: SkipLog
    users_below_threshold: int
    line_skips: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


class IngestSession:
    """Parses one IngestRecords stream. ``skips.on_skip`` sees ``self.payload`` (the raw line being read)."""

    def __init__(
        self, catalog: Catalog, skips: SkipLog, spool_dir: str | None = None, catalog_updates: str = REFUSE
    ) -> None:
        self.catalog = catalog
        self.catalog_updates = catalog_updates
        self.skips = skips
        self.spool = ReviewSpool(spool_dir)
        self.payload = b""
        self.lines_read = 0
        self.cohort_id = ""
        self._header: list[str] | None = None
        self._books: list[tuple[BookRecord, str, int]] = []
        self._first = True

    def close(self) -> None:
        self.spool.close()

    def feed(self, requests: Iterable[profile_pb2.IngestRecordsRequest]) -> None:
        for request in requests:
            if self._first:
                self.cohort_id = request.cohort_id.strip()
                self._first = False
            kind = request.WhichOneof("record")
            self.lines_read += 1
            if kind is None:
                self.payload = b""
                self.skips.add("empty_record", "request carries no line", "<stream>", self.lines_read)
                continue
            line: common_pb2.SourceLine = getattr(request, kind)
            self.payload = bytes(line.data)
            source = line.source or kind
            number = int(line.line_number) or self.lines_read
            if kind == "review_line":
                self._review(line.data, source, number)
            elif kind == "meta_line":
                self._meta(line.data, source, number)
            else:
                self._demographics(line.data, source, number)
        self.payload = b""
        self._flush_books()

    def _review(self, data: bytes, source: str, number: int) -> None:
        obj = parse_json_line(data, self.skips, source, number)
        if obj is None:
            if not data.strip():
                self.skips.add("empty_line", "blank review line", source, number)
            return
        try:
            review = parse_review(obj)
        except RecordError as exc:
            self.skips.add(exc.reason, exc.detail, source, number)
            return
        self.spool.add(review, source, number)

    def _meta(self, data: bytes, source: str, number: int) -> None:
        obj = parse_json_line(data, self.skips, source, number)
        if obj is None:
            if not data.strip():
                self.skips.add("empty_line", "blank metadata line", source, number)
            return
        try:
            self._books.append((parse_book(obj), source, number))
        except RecordError as exc:
            self.skips.add(exc.reason, exc.detail, source, number)
            return
        if len(self._books) >= 1000:
            self._flush_books()

    def _flush_books(self) -> None:
        """Add the buffered books; one that would change a book the catalog already holds is refused (or
        versioned, by configuration: profiler.catalog_updates), never silently rewritten."""
        if not self._books:
            return
        where = {book.parent_asin: (source, number) for book, source, number in self._books}
        for book, outcome in self.catalog.merge([b for b, _, _ in self._books], self.catalog_updates):
            source, number = where[book.parent_asin]
            if outcome == "refused":
                self.skips.add(
                    "catalog_conflict",
                    f"book {book.parent_asin} is already in the catalog with different metadata; refused "
                    "(profiler.catalog_updates = refuse; set it to version to keep both)",
                    source,
                    number,
                )
            elif outcome == "versioned":
                log.warning("catalog_book_replaced", parent_asin=book.parent_asin, source=source, line=number)
        self._books = []

    def _demographics(self, data: bytes, source: str, number: int) -> None:
        try:
            text = data.decode("utf-8-sig").strip("\r\n")
        except UnicodeDecodeError as exc:
            self.skips.add("not_utf8", f"invalid UTF-8 at byte {exc.start}", source, number)
            return
        try:
            cells = next(csv.reader([text]), [])
        except csv.Error as exc:
            self.skips.add("malformed_csv", str(exc), source, number)
            return
        if self._header is None:
            header = [c.strip() for c in cells]
            if "user_id" not in header:
                self.skips.add(
                    "missing_field",
                    f"the first demographics row must be a header with user_id (got {header})",
                    source,
                    number,
                )
                return
            self._header = header
            return
        if len(cells) > len(self._header):
            self.skips.add(
                "malformed_csv", f"{len(cells)} cells for {len(self._header)} columns", source, number
            )
            return
        row = dict(zip(self._header, cells, strict=False))
        try:
            self.spool.add_demographics(parse_demographics_row(row))
        except RecordError as exc:
            self.skips.add(exc.reason, exc.detail, source, number)

    def finish(self, min_reviews: int) -> IngestOutcome:
        """Join, deduplicate and apply the threshold; read the users back with :meth:`inputs`."""
        result = self.spool.finalize(self.catalog, self.skips, min_reviews)
        line_skips = sum(n for r, n in self.skips.counts.items() if r not in USER_REASONS)
        return IngestOutcome(
            self.cohort_id,
            result.qualifying,
            self.lines_read,
            self.skips,
            result.below_threshold,
            line_skips,
            dict(self.skips.counts),
        )

    def inputs(self, user_ids: list[str]) -> Iterator[UserInput]:
        """One user at a time (most recent reviews first), so a large ingest never sits in memory."""
        return self.spool.iter_inputs(user_ids, self.catalog, self.spool.demographics_of)
