import gzip
import json
from pathlib import Path

from gravity_core.amazon import (
    age_group,
    genre_group_of,
    genre_of,
    iter_books,
    iter_reviews,
    read_demographics,
)
from gravity_core.skips import SkipLog


def _review(**kw: object) -> dict:
    base = {
        "rating": 4.0,
        "title": "t",
        "text": "Loved it.",
        "images": [],
        "asin": "B1",
        "parent_asin": "B1",
        "user_id": "U1",
        "timestamp": 1600000000000,
        "helpful_vote": 0,
        "verified_purchase": True,
    }
    base.update(kw)
    return base


def test_reviews_bad_lines_are_counted_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "Books.jsonl"
    lines = [
        json.dumps(_review()).encode(),
        b"{not json",
        b"\xff\xfe broken bytes",
        json.dumps(_review(text="   ")).encode(),
        json.dumps(_review(user_id="")).encode(),
        b"[1, 2]",
        json.dumps(_review(rating="lots")).encode(),
        b"",
        json.dumps(_review(user_id="U2", parent_asin="B2")).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    skips = SkipLog()
    got = list(iter_reviews(path, skips))
    assert [(n, r.user_id) for n, r in got] == [(1, "U1"), (9, "U2")]
    assert skips.counts == {
        "malformed_json": 2,
        "not_utf8": 1,
        "empty_text": 1,
        "missing_field": 1,
        "bad_field": 1,
    }
    where = {(s.line, s.reason) for s in skips.examples}
    assert (2, "malformed_json") in where and (3, "not_utf8") in where and (4, "empty_text") in where
    assert all(s.source == str(path) for s in skips.examples)
    assert "skipped 6" in skips.summary_lines()[0]


def test_gzip_and_books(tmp_path: Path) -> None:
    path = tmp_path / "meta_Books.jsonl.gz"
    book = {
        "main_category": "Books",
        "title": "A",
        "description": ["One.", "Two."],
        "categories": ["Books", "Romance", "Contemporary Romance"],
        "parent_asin": "B1",
        "average_rating": 4.5,
        "rating_number": 10,
        "author": {"name": "X"},
    }
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(book) + "\n" + json.dumps({"title": "no asin"}) + "\n")
    skips = SkipLog()
    books = [b for _, b in iter_books(path, skips)]
    assert len(books) == 1 and books[0].genre == "Contemporary Romance" and books[0].genre_group == "Romance"
    assert books[0].description == "One.\n\nTwo." and books[0].author == "X"
    assert skips.counts == {"missing_field": 1}


def test_genre_rules() -> None:
    assert genre_of(["Books", "History", "World History"]) == "World History"
    assert genre_group_of(["Books", "History", "World History"]) == "History"
    assert genre_of(["Books"]) == "" and genre_of([]) == ""
    assert [age_group(a) for a in (18, 30, 31, 60, 61)] == [
        "young",
        "young",
        "middle-aged",
        "middle-aged",
        "senior",
    ]


def test_demographics_csv(tmp_path: Path) -> None:
    path = tmp_path / "demographics.csv"
    path.write_text(
        "user_id,age,gender,country\nU1,34,F,usa\nU2,,,\nU3,old,male,Japan\nU4,abc,male,India\n,40,male,Brazil\nU5,senior,alien,Japan\n"
    )
    skips = SkipLog()
    d = read_demographics(path, skips)
    assert (
        d["U1"].age == 34
        and d["U1"].age_group == "middle-aged"
        and d["U1"].gender == "female"
        and d["U1"].country == "USA"
    )
    assert d["U2"].age is None and d["U2"].gender == "" and d["U2"].country == ""
    assert d["U3"].age_group == "senior"
    assert set(d) == {"U1", "U2", "U3"}
    assert skips.counts == {"bad_field": 2, "missing_field": 1}
    assert {s.line for s in skips.examples} == {5, 6, 7}
