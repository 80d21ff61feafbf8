from pathlib import Path

from gravity.v1 import profile_pb2
from gravity_core.amazon import BookRecord
from gravity_core.catalog import Catalog
from gravity_core.profiles import ProfileStore
from gravity_core.proto_io import write_jsonl
from gravity_core.skips import SkipLog
from gravity_core.targets import select_targets


def _profile(uid: str, built: int, genres: dict[str, float], reviewed: list[str]) -> profile_pb2.UserProfile:
    p = profile_pb2.UserProfile(user_id=uid, built_at_ms=built, reviewed_asins=reviewed)
    for g, share in genres.items():
        p.interests.add(genre=g, share=share)
    return p


def test_store_keeps_newest_and_reads_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "profiles.jsonl"
    write_jsonl([_profile("a", 5, {}, []), _profile("b", 1, {}, [])], path)
    with open(path, "a") as f:
        f.write("{oops\n")
    skips = SkipLog()
    store = ProfileStore.from_jsonl(path, skips)
    assert len(store) == 2 and skips.counts == {"malformed_json": 1}
    assert not store.put(_profile("a", 4, {}, []))  # older: ignored
    assert store.put(_profile("a", 9, {"Poetry": 1.0}, []))
    assert store.get("a").interests[0].genre == "Poetry"


def test_targets_are_unreviewed_top_genre_books_and_deterministic() -> None:
    books = [
        BookRecord(
            f"{g[0]}{i}",
            f"{g}{i}",
            "desc.",
            ["Books", "G", g],
            average_rating=4.0 + i / 10,
            rating_number=100,
        )
        for g in ("Poetry", "Thrillers", "Romance")
        for i in range(5)
    ]
    cat = Catalog.from_books(books)
    p = _profile("u", 1, {"Poetry": 0.6, "Thrillers": 0.3}, ["P4", "T4"])
    first = select_targets(p, cat, n=4, seed=1)
    assert len(first) == 4
    assert all(b.genre in ("Poetry", "Thrillers") and b.parent_asin not in ("P4", "T4") for b in first)
    assert {b.genre for b in first} == {"Poetry", "Thrillers"}
    assert [b.parent_asin for b in select_targets(p, cat, n=4, seed=1)] == [b.parent_asin for b in first]
