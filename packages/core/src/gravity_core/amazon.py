"""Streaming readers for the Amazon Reviews 2023 format (reviews, item metadata) and demographics CSV.

Files may be plain or gzipped JSON Lines. Readers yield one record at a time (constant memory) and record
every bad line in a :class:`~gravity_core.skips.SkipLog` with file and line: malformed JSON, non-UTF-8
bytes, missing fields, empty text. They never raise on bad data.

Genres: an item's ``categories`` is a path such as ``["Books", "Literature & Fiction", "Historical
Fiction"]``. The genre is the path's last element (its most specific node) and the genre group is the
element under the root ("Literature & Fiction"); a path of just ``["Books"]`` or an empty one has no genre.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from gravity.v1 import common_pb2
from gravity_core.skips import RecordError, SkipLog

AGE_GROUPS = ("young", "middle-aged", "senior")


@dataclass(slots=True)
class ReviewRecord:
    user_id: str
    parent_asin: str
    asin: str
    rating: float
    title: str
    text: str
    timestamp_ms: int
    helpful_vote: int = 0
    verified_purchase: bool = False

    def to_proto(self) -> common_pb2.Review:
        return common_pb2.Review(
            user_id=self.user_id,
            parent_asin=self.parent_asin,
            asin=self.asin,
            rating=self.rating,
            title=self.title,
            text=self.text,
            timestamp_ms=self.timestamp_ms,
            helpful_vote=self.helpful_vote,
            verified_purchase=self.verified_purchase,
        )

    @classmethod
    def from_proto(cls, msg: common_pb2.Review) -> ReviewRecord:
        return cls(
            msg.user_id,
            msg.parent_asin,
            msg.asin or msg.parent_asin,
            msg.rating,
            msg.title,
            msg.text,
            msg.timestamp_ms,
            msg.helpful_vote,
            msg.verified_purchase,
        )


@dataclass(slots=True)
class BookRecord:
    parent_asin: str
    title: str
    description: str
    categories: list[str] = field(default_factory=list)
    subtitle: str = ""
    author: str = ""
    main_category: str = ""
    average_rating: float = 0.0
    rating_number: int = 0

    @property
    def genre(self) -> str:
        return genre_of(self.categories)

    @property
    def genre_group(self) -> str:
        return genre_group_of(self.categories)

    def to_proto(self) -> common_pb2.Book:
        return common_pb2.Book(
            parent_asin=self.parent_asin,
            title=self.title,
            subtitle=self.subtitle,
            author=self.author,
            main_category=self.main_category,
            categories=list(self.categories),
            description=self.description,
            average_rating=self.average_rating,
            rating_number=self.rating_number,
            genre=self.genre,
            genre_group=self.genre_group,
        )

    @classmethod
    def from_proto(cls, msg: common_pb2.Book) -> BookRecord:
        return cls(
            msg.parent_asin,
            msg.title,
            msg.description,
            list(msg.categories),
            msg.subtitle,
            msg.author,
            msg.main_category,
            msg.average_rating,
            msg.rating_number,
        )


@dataclass(slots=True)
class DemographicsRecord:
    """Demographics as given (empty string = unknown)."""

    user_id: str
    age: int | None = None
    age_group: str = ""
    gender: str = ""
    country: str = ""


def genre_of(categories: list[str]) -> str:
    path = [c.strip() for c in categories if c and c.strip()]
    return path[-1] if len(path) >= 2 else ""


def genre_group_of(categories: list[str]) -> str:
    path = [c.strip() for c in categories if c and c.strip()]
    return path[1] if len(path) >= 2 else ""


def age_group(age: int) -> str:
    """Paper §3.2: young (<30), middle-aged (31-60), senior (>60); 30 counts as young."""
    if age <= 30:
        return "young"
    if age <= 60:
        return "middle-aged"
    return "senior"


_GENDERS = {
    "f": "female",
    "female": "female",
    "woman": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "non-binary": "non-binary",
    "nonbinary": "non-binary",
    "nb": "non-binary",
}
_COUNTRIES = {
    "usa": "USA",
    "us": "USA",
    "united states": "USA",
    "united states of america": "USA",
    "brazil": "Brazil",
    "brasil": "Brazil",
    "india": "India",
    "japan": "Japan",
}
_AGE_GROUP_ALIASES = {
    "young": "young",
    "middle-aged": "middle-aged",
    "middle aged": "middle-aged",
    "middle": "middle-aged",
    "senior": "senior",
    "old": "senior",
}


def normalize_gender(value: str) -> str:
    v = value.strip().lower()
    if not v:
        return ""
    if v not in _GENDERS:
        raise RecordError("bad_field", f"gender {value!r} is not female, male or non-binary")
    return _GENDERS[v]


def normalize_country(value: str) -> str:
    v = value.strip()
    return _COUNTRIES.get(v.lower(), v)


def open_text(path: str | Path) -> IO[bytes]:
    p = Path(path)
    return cast(IO[bytes], gzip.open(p, "rb")) if p.suffix == ".gz" else open(p, "rb")


def iter_json_lines(path: str | Path, skips: SkipLog) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each well-formed JSON object line; bad lines go to ``skips``."""
    source = str(path)
    try:
        handle = open_text(path)
    except OSError as exc:
        skips.add("unreadable_file", str(exc), source)
        return
    with handle:
        try:
            for number, raw in enumerate(handle, start=1):
                obj = parse_json_line(raw, skips, source, number)
                if obj is not None:
                    yield number, obj
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            skips.add("unreadable_file", f"stopped reading: {exc}", source)


def parse_json_line(raw: bytes, skips: SkipLog, source: str, number: int) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        skips.add("not_utf8", f"invalid UTF-8 at byte {exc.start}", source, number)
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        skips.add("malformed_json", exc.msg, source, number)
        return None
    if not isinstance(obj, dict):
        skips.add("malformed_json", "line is not a JSON object", source, number)
        return None
    return obj


def _str(obj: dict[str, Any], key: str, required: bool = False) -> str:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordError("missing_field", f"{key} is missing or empty")
        return ""
    if not isinstance(value, (str, int, float)):
        raise RecordError("bad_field", f"{key} is not a string")
    return str(value).strip()


def _num(obj: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = obj.get(key)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise RecordError("bad_field", f"{key}={value!r} is not a number") from None


def parse_review(obj: dict[str, Any]) -> ReviewRecord:
    user_id = _str(obj, "user_id", required=True)
    parent = _str(obj, "parent_asin") or _str(obj, "asin")
    if not parent:
        raise RecordError("missing_field", "parent_asin is missing or empty")
    text = _str(obj, "text")
    if not text:
        raise RecordError("empty_text", "review text is empty")
    rating = _num(obj, "rating", float, 0.0)
    if not 0.0 <= rating <= 5.0:
        raise RecordError("bad_field", f"rating {rating} is outside 0..5")
    return ReviewRecord(
        user_id=user_id,
        parent_asin=parent,
        asin=_str(obj, "asin") or parent,
        rating=rating,
        title=_str(obj, "title"),
        text=text,
        timestamp_ms=_num(obj, "timestamp", int, 0),
        helpful_vote=_num(obj, "helpful_vote", int, 0),
        verified_purchase=bool(obj.get("verified_purchase", False)),
    )


def _join_description(value: Any) -> str:
    if isinstance(value, list):
        return "\n\n".join(str(v).strip() for v in value if str(v).strip())
    return str(value or "").strip()


def parse_book(obj: dict[str, Any]) -> BookRecord:
    parent = _str(obj, "parent_asin", required=True)
    title = _str(obj, "title", required=True)
    categories = obj.get("categories") or []
    if not isinstance(categories, list):
        raise RecordError("bad_field", "categories is not a list")
    author = obj.get("author")
    author_name = (
        author.get("name", "") if isinstance(author, dict) else (author if isinstance(author, str) else "")
    )
    return BookRecord(
        parent_asin=parent,
        title=title,
        description=_join_description(obj.get("description")),
        categories=[str(c) for c in categories],
        subtitle=_str(obj, "subtitle"),
        author=str(author_name or "").strip(),
        main_category=_str(obj, "main_category"),
        average_rating=_num(obj, "average_rating", float, 0.0),
        rating_number=_num(obj, "rating_number", int, 0),
    )


def iter_reviews(path: str | Path, skips: SkipLog) -> Iterator[tuple[int, ReviewRecord]]:
    for number, obj in iter_json_lines(path, skips):
        try:
            yield number, parse_review(obj)
        except RecordError as exc:
            skips.add(exc.reason, exc.detail, str(path), number)


def iter_books(path: str | Path, skips: SkipLog) -> Iterator[tuple[int, BookRecord]]:
    for number, obj in iter_json_lines(path, skips):
        try:
            yield number, parse_book(obj)
        except RecordError as exc:
            skips.add(exc.reason, exc.detail, str(path), number)


DEMOGRAPHIC_COLUMNS = ("user_id", "age", "gender", "country")


def parse_demographics_row(row: dict[str, str]) -> DemographicsRecord:
    user_id = (row.get("user_id") or "").strip()
    if not user_id:
        raise RecordError("missing_field", "user_id is empty")
    raw_age = (row.get("age") or row.get("age_group") or "").strip()
    age: int | None = None
    group = ""
    if raw_age:
        if raw_age.lower() in _AGE_GROUP_ALIASES:
            group = _AGE_GROUP_ALIASES[raw_age.lower()]
        else:
            try:
                age = int(float(raw_age))
            except ValueError:
                raise RecordError(
                    "bad_field", f"age {raw_age!r} is neither a number nor an age group"
                ) from None
            if not 0 < age < 120:
                raise RecordError("bad_field", f"age {age} is out of range")
            group = age_group(age)
    return DemographicsRecord(
        user_id,
        age,
        group,
        normalize_gender(row.get("gender") or ""),
        normalize_country(row.get("country") or ""),
    )


def read_demographics(path: str | Path, skips: SkipLog) -> dict[str, DemographicsRecord]:
    """user_id -> demographics. The CSV needs a header with user_id and any of age, gender, country."""
    source = str(path)
    out: dict[str, DemographicsRecord] = {}
    try:
        raw = open_text(path).read()
    except OSError as exc:
        skips.add("unreadable_file", str(exc), source)
        return out
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        skips.add("not_utf8", f"invalid UTF-8 at byte {exc.start}", source)
        return out
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "user_id" not in reader.fieldnames:
        skips.add("missing_field", f"header has no user_id column (got {reader.fieldnames})", source, 1)
        return out
    for row in reader:
        try:
            rec = parse_demographics_row(row)
        except RecordError as exc:
            skips.add(exc.reason, exc.detail, source, reader.line_num)
            continue
        out[rec.user_id] = rec
    return out
