"""Group a review stream by user in constant memory: a scratch SQLite file instead of a dict of lists.

Reviews are appended as they are read (any order, any volume). :meth:`ReviewSpool.finalize` then, in
SQL, keeps the latest review when a user reviewed the same book twice, drops reviews of books the
catalog does not know, and splits users into those with at least ``min_reviews`` reviews and the rest;
every dropped review or user is recorded in the SkipLog with its file and line. :meth:`user_input`
reads one user's reviews back (most recent first) joined with their books.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gravity_core.amazon import DemographicsRecord, ReviewRecord
from gravity_core.catalog import Catalog
from gravity_core.skips import SkipLog
from gravity_profiler.inputs import UserInput

_SCHEMA = """
CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    parent_asin TEXT NOT NULL,
    asin TEXT NOT NULL,
    rating REAL NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    ts INTEGER NOT NULL,
    helpful_vote INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    source TEXT NOT NULL,
    line INTEGER NOT NULL
);
CREATE TABLE demographics (
    user_id TEXT PRIMARY KEY,
    age INTEGER,
    age_group TEXT NOT NULL,
    gender TEXT NOT NULL,
    country TEXT NOT NULL
);
"""
_INDEXES = """
CREATE INDEX reviews_user_item ON reviews (user_id, parent_asin, ts);
CREATE INDEX reviews_item ON reviews (parent_asin);
"""
_BATCH = 5000


@dataclass(frozen=True)
class SpoolResult:
    qualifying: list[str]
    below_threshold: int
    reviews_kept: int
    # Requested users (``users=``) without a single review in the input.
    missing_users: list[str]


class ReviewSpool:
    def __init__(self, directory: str | Path | None = None) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="gravity-spool-", dir=directory))
        self._conn = sqlite3.connect(self._dir / "reviews.sqlite", check_same_thread=False)
        # A scratch file: durability buys nothing here, speed does.
        self._conn.execute("PRAGMA journal_mode=OFF")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._conn.executescript(_SCHEMA)
        self._pending: list[tuple[object, ...]] = []
        self._finalized = False
        self.added = 0

    def __enter__(self) -> ReviewSpool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def add(self, review: ReviewRecord, source: str, line: int) -> None:
        self._pending.append(
            (
                review.user_id,
                review.parent_asin,
                review.asin,
                review.rating,
                review.title,
                review.text,
                review.timestamp_ms,
                review.helpful_vote,
                int(review.verified_purchase),
                source,
                line,
            )
        )
        self.added += 1
        if len(self._pending) >= _BATCH:
            self._flush()

    def add_demographics(self, record: DemographicsRecord) -> None:
        """Given demographics of one user (a later row for the same user wins)."""
        self._conn.execute(
            "INSERT OR REPLACE INTO demographics VALUES (?, ?, ?, ?, ?)",
            (record.user_id, record.age, record.age_group, record.gender, record.country),
        )

    def demographics_of(self, user_id: str) -> DemographicsRecord | None:
        row = self._conn.execute(
            "SELECT user_id, age, age_group, gender, country FROM demographics WHERE user_id = ?", (user_id,)
        ).fetchone()
        return DemographicsRecord(row[0], row[1], row[2], row[3], row[4]) if row else None

    def _flush(self) -> None:
        if self._pending:
            self._conn.executemany(
                "INSERT INTO reviews (user_id, parent_asin, asin, rating, title, text, ts, helpful_vote, "
                "verified, source, line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self._pending,
            )
            self._conn.commit()
            self._pending = []

    def finalize(
        self,
        catalog: Catalog,
        skips: SkipLog,
        min_reviews: int,
        users: set[str] | None = None,
    ) -> SpoolResult:
        """Deduplicate, join with the catalog, apply the threshold. ``users`` restricts to a subset."""
        self._flush()
        if not self._finalized:
            self._conn.executescript(_INDEXES)
            self._finalized = True
        if users is not None:
            self._conn.execute("CREATE TEMP TABLE wanted (user_id TEXT PRIMARY KEY)")
            self._conn.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", [(u,) for u in users])
            self._conn.execute("DELETE FROM reviews WHERE user_id NOT IN (SELECT user_id FROM wanted)")
        missing: list[str] = []
        if users is not None:
            present = {row[0] for row in self._conn.execute("SELECT DISTINCT user_id FROM reviews")}
            missing = sorted(users - present)
        self._drop_duplicates(skips)
        self._drop_unknown_items(catalog, skips)
        self._conn.commit()
        qualifying: list[str] = []
        below = 0
        rows = self._conn.execute(
            "SELECT user_id, COUNT(*), MIN(source), MIN(line) FROM reviews GROUP BY user_id ORDER BY user_id"
        )
        for user_id, count, source, line in rows:
            if count >= min_reviews:
                qualifying.append(user_id)
            else:
                below += 1
                skips.add(
                    "below_threshold",
                    f"user has {count} usable review(s), fewer than min_reviews={min_reviews}",
                    source,
                    line,
                    record_id=user_id,
                )
        kept = self._conn.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
        return SpoolResult(qualifying, below, int(kept), missing)

    def _drop_duplicates(self, skips: SkipLog) -> None:
        """Keep the latest review per (user, book); record the others."""
        stale = self._conn.execute(
            "SELECT r.id, r.source, r.line, r.user_id, r.parent_asin FROM reviews r WHERE EXISTS ("
            "SELECT 1 FROM reviews s WHERE s.user_id = r.user_id AND s.parent_asin = r.parent_asin "
            "AND (s.ts > r.ts OR (s.ts = r.ts AND s.id > r.id)))"
        ).fetchall()
        for _, source, line, user_id, asin in stale:
            skips.add(
                "duplicate_review", f"an older review of {asin} by the same user", source, line, user_id
            )
        self._delete_ids([row[0] for row in stale])

    def _drop_unknown_items(self, catalog: Catalog, skips: SkipLog) -> None:
        asins = [row[0] for row in self._conn.execute("SELECT DISTINCT parent_asin FROM reviews")]
        unknown = [a for a in asins if a not in catalog]
        for start in range(0, len(unknown), 500):
            chunk = unknown[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT id, source, line, user_id, parent_asin FROM reviews WHERE parent_asin IN ({marks})",
                chunk,
            ).fetchall()
            for _, source, line, user_id, asin in rows:
                skips.add("unknown_item", f"no metadata for parent_asin {asin}", source, line, user_id)
            self._delete_ids([row[0] for row in rows])

    def _delete_ids(self, ids: list[int]) -> None:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self._conn.execute(f"DELETE FROM reviews WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def reviews_of(self, user_id: str) -> list[ReviewRecord]:
        rows = self._conn.execute(
            "SELECT user_id, parent_asin, asin, rating, title, text, ts, helpful_vote, verified FROM reviews "
            "WHERE user_id = ? ORDER BY ts DESC, parent_asin",
            (user_id,),
        )
        return [
            ReviewRecord(u, p, a, float(r), t, x, int(ts), int(h), bool(v))
            for u, p, a, r, t, x, ts, h, v in rows
        ]

    def user_input(
        self, user_id: str, catalog: Catalog, demographics: DemographicsRecord | None
    ) -> UserInput:
        reviews = self.reviews_of(user_id)
        books = catalog.get_many(r.parent_asin for r in reviews)
        return UserInput(user_id, reviews, books, demographics)

    def iter_inputs(
        self,
        user_ids: list[str],
        catalog: Catalog,
        demographics: Callable[[str], DemographicsRecord | None],
    ) -> Iterator[UserInput]:
        for user_id in user_ids:
            yield self.user_input(user_id, catalog, demographics(user_id))
