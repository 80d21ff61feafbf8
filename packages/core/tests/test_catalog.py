import json
from pathlib import Path

from gravity_core.amazon import BookRecord
from gravity_core.catalog import Catalog
from gravity_core.skips import SkipLog


def _book(asin: str, genre: str, rating: float, n: int, desc: str = "Good.") -> BookRecord:
    return BookRecord(
        asin, f"T{asin}", desc, ["Books", "Group", genre], average_rating=rating, rating_number=n
    )


def test_top_rated_uses_weighted_rating_and_exclusions() -> None:
    cat = Catalog.from_books(
        [
            _book("A", "Poetry", 5.0, 2),  # perfect but only two ratings
            _book("B", "Poetry", 4.6, 5000),
            _book("C", "Poetry", 4.4, 800),
            _book("D", "Poetry", 4.9, 3000, desc=""),  # no description: never picked
            _book("E", "Thrillers", 4.9, 9000),
            *[_book(f"K{i}", "Cookbooks", 3.5, 100) for i in range(4)],  # pulls the catalog mean down to 4.2
        ]
    )
    assert [b.parent_asin for b in cat.top_rated("Poetry", 3)] == ["B", "C", "A"]
    assert [b.parent_asin for b in cat.top_rated("Poetry", 2, exclude={"B"})] == ["C", "A"]
    assert cat.genres() == {"Cookbooks": 4, "Poetry": 4, "Thrillers": 1}
    assert cat.get("E").genre == "Thrillers" and cat.get("nope") is None
    assert set(cat.get_many(["A", "E", "zzz"])) == {"A", "E"}


def test_open_indexes_once_and_replays_skips(tmp_path: Path) -> None:
    meta = tmp_path / "meta.jsonl"
    meta.write_text(
        json.dumps(
            {
                "parent_asin": "X1",
                "title": "One",
                "categories": ["Books", "History", "World History"],
                "description": ["d"],
            }
        )
        + "\n{broken\n"
    )
    first, second = SkipLog(), SkipLog()
    c1 = Catalog.open(meta, first, cache_dir=tmp_path / "idx")
    c2 = Catalog.open(meta, second, cache_dir=tmp_path / "idx")
    assert len(c1) == len(c2) == 1
    assert first.counts == second.counts == {"malformed_json": 1}
    assert len(list((tmp_path / "idx").glob("*.sqlite"))) == 1


def test_at_persists_books_across_reopen(tmp_path: Path) -> None:
    db = tmp_path / "svc" / "catalog.sqlite"
    catalog = Catalog.at(db)
    catalog.add([BookRecord("B1", "One", "d", ["Books", "Mystery", "Cozy"])])
    catalog.close()
    again = Catalog.at(db)
    assert "B1" in again and again.get("B1").genre == "Cozy"
    again.add([BookRecord("B2", "Two", "d", ["Books", "Poetry"])])
    assert len(again) == 2
