"""The item catalog: metadata by parent_asin, genres, and the highest-rated books of a genre.

Backed by SQLite so the full Amazon Books metadata (millions of items) never has to sit in memory: the
first :meth:`Catalog.open` of a metadata file streams it into an index under ``$GRAVITY_HOME/catalog``
(keyed by the file's path, size and mtime); later opens reuse it.

"Highly rated" is a weighted rating, so a 5.0 from three readers does not beat a 4.6 from thousands:
``score = v/(v+m)·R + m/(v+m)·C`` with R the book's average_rating, v its rating_number, C the catalog mean
rating and m = ``prior_votes`` (50).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from gravity_core.amazon import BookRecord, iter_books
from gravity_core.paths import gravity_home
from gravity_core.skips import SkipLog

_SCHEMA = """
CREATE TABLE IF NOT EXISTS books (
    parent_asin TEXT PRIMARY KEY,
    genre TEXT NOT NULL,
    genre_group TEXT NOT NULL,
    average_rating REAL NOT NULL,
    rating_number INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS books_genre ON books (genre);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS book_versions (
    parent_asin TEXT NOT NULL,
    replaced_at_ms INTEGER NOT NULL,
    record TEXT NOT NULL
);
"""
# What :meth:`Catalog.merge` does with a book it already holds under different metadata.
REFUSE, VERSION = "refuse", "version"


class Catalog:
    def __init__(self, conn: sqlite3.Connection, source: str = "") -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.source = source
        self.prior_votes = 50

    # ------------------------------------------------------------ building
    @classmethod
    def open(
        cls, meta_path: str | Path, skips: SkipLog | None = None, cache_dir: Path | None = None
    ) -> Catalog:
        """Index ``meta_path`` once (or reuse the index) and open it. Bad lines are recorded in ``skips``."""
        skips = skips if skips is not None else SkipLog()
        path = Path(meta_path).resolve()
        if not path.is_file():
            skips.add("unreadable_file", "metadata file does not exist", str(meta_path))
            return cls.from_books([], source=str(meta_path))
        st = path.stat()
        key = hashlib.sha256(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:20]
        root = cache_dir or gravity_home() / "catalog"
        root.mkdir(parents=True, exist_ok=True)
        db = root / f"{path.stem}-{key}.sqlite"
        if db.is_file():
            conn = sqlite3.connect(db, check_same_thread=False)
            done = conn.execute("SELECT value FROM meta WHERE key = 'skips'").fetchone()
            if done is not None:
                skips.extend(json.loads(done[0]))
                return cls(conn, str(meta_path))
            conn.close()
        tmp = db.with_suffix(f".tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, check_same_thread=False)
        local = SkipLog(keep=1000)
        catalog = cls(conn, str(meta_path))
        catalog._create()
        catalog.add(book for _, book in iter_books(path, local))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('skips', ?)", (json.dumps(local.to_dict()),))
        conn.commit()
        conn.close()
        os.replace(tmp, db)
        skips.extend(local.to_dict())
        return cls(sqlite3.connect(db, check_same_thread=False), str(meta_path))

    @classmethod
    def at(cls, db_path: str | Path) -> Catalog:
        """A persistent, writable catalog in ``db_path`` (created when missing), for services that receive
        metadata over time and must keep it across restarts."""
        path = Path(db_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = cls(sqlite3.connect(path, check_same_thread=False), str(path))
        catalog._create()
        return catalog

    @classmethod
    def from_books(cls, books: Iterable[BookRecord], source: str = "<memory>") -> Catalog:
        catalog = cls(sqlite3.connect(":memory:", check_same_thread=False), source)
        catalog._create()
        catalog.add(books)
        return catalog

    def _create(self) -> None:
        with self._lock:
            self._conn.executescript(_SCHEMA)

    def add(self, books: Iterable[BookRecord]) -> int:
        """Insert or replace books (a later record for the same parent_asin wins)."""
        n = 0
        batch: list[tuple[object, ...]] = []
        for book in books:
            batch.append(
                (
                    book.parent_asin,
                    book.genre,
                    book.genre_group,
                    book.average_rating,
                    book.rating_number,
                    json.dumps(asdict(book), ensure_ascii=False),
                )
            )
            if len(batch) >= 5000:
                n += self._insert(batch)
                batch = []
        n += self._insert(batch)
        return n

    def merge(self, books: Iterable[BookRecord], on_change: str = REFUSE) -> list[tuple[BookRecord, str]]:
        """Add books, each with its outcome: "added", "unchanged", "refused" (it already holds the book with
        different metadata and ``on_change`` is "refuse") or "versioned" (the new metadata replaces the old,
        which is kept in ``book_versions``). Unlike :meth:`add`, nobody silently rewrites a description
        every method personalizes."""
        outcomes: list[tuple[BookRecord, str]] = []
        fresh: list[BookRecord] = []
        for book in books:
            current = self.get(book.parent_asin)
            if current is None:
                fresh.append(book)
                outcomes.append((book, "added"))
            elif current == book:
                outcomes.append((book, "unchanged"))
            elif on_change == VERSION:
                with self._lock:
                    self._conn.execute(
                        "INSERT INTO book_versions VALUES (?, ?, ?)",
                        (
                            current.parent_asin,
                            int(time.time() * 1000),
                            json.dumps(asdict(current), ensure_ascii=False),
                        ),
                    )
                fresh.append(book)
                outcomes.append((book, "versioned"))
            else:
                outcomes.append((book, "refused"))
        self.add(fresh)
        return outcomes

    def versions(self, parent_asin: str) -> list[BookRecord]:
        """Earlier metadata of a book that was replaced, oldest first."""
        rows = self._query(
            "SELECT record FROM book_versions WHERE parent_asin = ? ORDER BY replaced_at_ms, rowid",
            (parent_asin,),
        )
        return [_book(r[0]) for r in rows]

    def _insert(self, rows: list[tuple[object, ...]]) -> int:
        if rows:
            with self._lock:
                self._conn.executemany("INSERT OR REPLACE INTO books VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._conn.commit()
        return len(rows)

    # ------------------------------------------------------------- queries
    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM books")[0][0])  # type: ignore[call-overload]

    def __contains__(self, parent_asin: object) -> bool:
        return bool(self._query("SELECT 1 FROM books WHERE parent_asin = ?", (parent_asin,)))

    def get(self, parent_asin: str) -> BookRecord | None:
        rows = self._query("SELECT record FROM books WHERE parent_asin = ?", (parent_asin,))
        return _book(rows[0][0]) if rows else None

    def get_many(self, parent_asins: Iterable[str]) -> dict[str, BookRecord]:
        out: dict[str, BookRecord] = {}
        ids = list(dict.fromkeys(parent_asins))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for (record,) in self._query(f"SELECT record FROM books WHERE parent_asin IN ({marks})", chunk):
                book = _book(record)
                out[book.parent_asin] = book
        return out

    def genres(self) -> dict[str, int]:
        """Genre -> number of books, for every non-empty genre."""
        rows = self._query(
            "SELECT genre, COUNT(*) FROM books WHERE genre != '' GROUP BY genre ORDER BY genre"
        )
        return {str(g): int(n) for g, n in rows}  # type: ignore[call-overload]

    def genre_groups(self) -> dict[str, str]:
        """Genre -> its group (the most common one when a genre sits under several)."""
        rows = self._query(
            "SELECT genre, genre_group, COUNT(*) AS n FROM books WHERE genre != '' GROUP BY genre, genre_group ORDER BY n"
        )
        return {str(g): str(grp) for g, grp, _ in rows}

    def mean_rating(self) -> float:
        row = self._query("SELECT AVG(average_rating) FROM books WHERE rating_number > 0")[0][0]
        return float(row) if row is not None else 0.0  # type: ignore[arg-type]

    def top_rated(
        self, genre: str, n: int, exclude: Iterable[str] = (), min_ratings: int = 0
    ) -> list[BookRecord]:
        """The ``n`` best books of ``genre`` by weighted rating, skipping ``exclude`` and empty descriptions."""
        excluded = set(exclude)
        c, m = self.mean_rating(), float(self.prior_votes)
        rows = self._query(
            "SELECT record FROM books WHERE genre = ? AND rating_number >= ? "
            "ORDER BY (rating_number * average_rating + ? * ?) / (rating_number + ?) DESC, rating_number DESC, parent_asin",
            (genre, min_ratings, m, c, m),
        )
        out = []
        for (record,) in rows:
            book = _book(record)
            if book.parent_asin in excluded or not book.description:
                continue
            out.append(book)
            if len(out) == n:
                break
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _book(record: object) -> BookRecord:
    return BookRecord(**json.loads(str(record)))
