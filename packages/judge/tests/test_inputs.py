"""Bad input is counted with its file and line, never a crash and never a silent drop."""

from __future__ import annotations

from pathlib import Path

from judge_fixtures import METHOD_TEXTS, generation, unit_rows

from gravity_core.profiles import ProfileStore
from gravity_core.proto_io import to_json
from gravity_core.skips import SkipLog
from gravity_judge.inputs import assemble, rows_from_file
from gravity_judge.persona import Persona


def _lookup(store: ProfileStore):  # type: ignore[no-untyped-def]
    return lambda uid: Persona.from_profile(store.get(uid)) if uid in store else None


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_every_bad_row_is_counted_with_its_line(tmp_path: Path, profiles_path: Path) -> None:
    good = [to_json(g) for g in unit_rows("U_USA", "B1", METHOD_TEXTS)]
    lines = [
        *good,  # lines 1-5: a complete unit
        to_json(generation("U_USA", "B1", "gravity", "a second gravity row")),  # 6: duplicate
        to_json(generation("U_USA", "B1", "mystery-method", "text")),  # 7: unknown method
        to_json(generation("U_BRA", "B9", "gravity", "no original for this book")),  # 8: missing original
        to_json(generation("U_NOBODY", "B1", "original", "orig")),  # 9: no profile
        to_json(generation("U_NOBODY", "B1", "gravity", "g")),  # 10
        to_json(generation("U_JPN", "B1", "lamp", "   ")),  # 11: empty text
        to_json(generation("", "B1", "lamp", "who?")),  # 12: missing user id
        "{not json",  # 13
        '{"user_id": "U_JPN", "unknown_field": 1}',  # 14: not a Generation
        to_json(generation("U_IND", "B3", "original", "only the original")),  # 15: nothing to judge
    ]
    path = _write(tmp_path / "generations.jsonl", lines)
    skips = SkipLog()
    store = ProfileStore.from_jsonl(profiles_path, skips)
    evalset = assemble(rows_from_file(path, skips), _lookup(store), skips)

    assert [u.key for u in evalset.units] == ["U_USA/B1"]
    assert evalset.units[0].outputs["gravity"] == METHOD_TEXTS["gravity"]  # the first row wins
    assert evalset.methods == ["base-rewrite", "lamp", "gravity", "gravity-no-values"]
    assert dict(skips.counts) == {
        "duplicate_row": 1,
        "unknown_method": 1,
        "missing_original": 1,
        "missing_profile": 1,
        "empty_text": 1,
        "missing_field": 1,
        "malformed_json": 1,
        "bad_record": 1,
        "no_methods": 1,
    }
    where = {s.reason: s.where() for s in skips.examples}
    assert where["duplicate_row"] == f"{path}:6"
    assert where["unknown_method"] == f"{path}:7"
    assert where["missing_original"] == f"{path}:8"
    assert where["missing_profile"] == f"{path}:9"
    assert where["malformed_json"] == f"{path}:13"
    assert evalset.rows_read == 13 and evalset.rows_used == 5


def test_methods_filter_and_extra_methods(tmp_path: Path, profiles_path: Path) -> None:
    rows = unit_rows("U_USA", "B1", {**METHOD_TEXTS, "my-baseline": "a new baseline's text"})
    path = _write(tmp_path / "g.jsonl", [to_json(g) for g in rows])
    store = ProfileStore.from_jsonl(profiles_path, SkipLog())
    skips = SkipLog()
    only = assemble(
        rows_from_file(path, skips),
        _lookup(store),
        skips,
        only_methods=["gravity"],
        extra_methods=["my-baseline"],
    )
    assert only.methods == ["gravity"] and only.rows_excluded == 4 and skips.total == 0
    skips = SkipLog()
    unknown = assemble(rows_from_file(path, skips), _lookup(store), skips)
    assert skips.counts["unknown_method"] == 1 and "my-baseline" not in unknown.methods


def test_persona_and_groups_come_from_the_profile_and_original(tmp_path: Path, profiles_path: Path) -> None:
    rows = unit_rows("U_JPN", "B1", METHOD_TEXTS, "Children's Books")
    path = _write(tmp_path / "g.jsonl", [to_json(g) for g in rows])
    store = ProfileStore.from_jsonl(profiles_path, SkipLog())
    (unit,) = assemble(rows_from_file(path, SkipLog()), _lookup(store), SkipLog()).units
    assert unit.country == "Japan" and unit.genre_group == "Children's Books"
    assert unit.persona.text().startswith("You are a young male from Japan. A student")
