"""Personality item banks: the shipped SJT bank, TRAIT and Big5Chat loaders, sampling."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from gravity.v1 import profile_pb2
from gravity_core.errors import ConfigError
from gravity_core.names import TRAITS as OCEAN
from gravity_core.skips import SkipLog
from gravity_pairgen.banks import (
    BIG5CHAT,
    TRAIT,
    PersonalityBank,
    PersonalityItem,
    _split,
    load_big5chat,
    load_builtin,
    load_trait,
)
from gravity_pairgen.facets import personality_pairs
from gravity_pairgen.rows import Omissions


def _trait_record(personality: str, n: int) -> dict[str, str]:
    return {
        "situation": f"I am at a crowded party number {n} where I know only the host.",
        "query": "How should I spend the evening?",
        "response_high1": f"Introduce myself to a group and start a conversation ({n}).",
        "response_high2": f"Join the dance floor and invite others along ({n}).",
        "response_low1": f"Find a quiet corner and talk with the host when they are free ({n}).",
        "response_low2": f"Leave early and spend the rest of the night reading ({n}).",
        "personality": personality,
    }


def test_builtin_bank_has_thirty_items_per_trait_with_distinct_answers() -> None:
    skips = SkipLog()
    items = load_builtin(skips)
    assert skips.total == 0
    per_trait = Counter(i.trait for i in items)
    assert set(per_trait) == set(OCEAN) and min(per_trait.values()) >= 30
    assert len({i.id for i in items}) == len(items)
    assert all(i.high[0] != i.low[0] and i.question for i in items)


def test_trait_loader_reads_jsonl_and_json_and_skips_non_ocean_traits(tmp_path: Path) -> None:
    records = [
        _trait_record("Extraversion", 1),
        _trait_record("Machiavellianism", 2),
        _trait_record("openness", 3),
    ]
    jsonl = tmp_path / "trait.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\nnot json\n")
    skips = SkipLog()
    items = load_trait(jsonl, skips)
    assert [i.trait for i in items] == ["extraversion", "openness"]
    assert items[0].source == TRAIT and len(items[0].high) == 2 and len(items[0].low) == 2
    assert items[0].question.endswith("How should I spend the evening?")
    assert skips.counts == {"non_ocean_trait": 1, "malformed_json": 1}
    assert {s.line for s in skips.examples} == {2, 4}

    array = tmp_path / "trait.json"
    array.write_text(json.dumps(records))
    assert [i.id for i in load_trait(array, SkipLog())] == [i.id for i in items]


def test_trait_answers_are_drawn_per_user_from_the_two_of_each_level(tmp_path: Path) -> None:
    path = tmp_path / "trait.jsonl"
    path.write_text(json.dumps(_trait_record("Extraversion", 1)) + "\n")
    item = load_trait(path, SkipLog())[0]
    bank = PersonalityBank.build([item])
    chosen_high, rejected_low = set(), set()
    for n in range(24):
        profile = profile_pb2.UserProfile(
            user_id=f"u{n}",
            personality=profile_pb2.Personality(
                traits=[
                    profile_pb2.TraitScore(
                        trait=profile_pb2.TRAIT_EXTRAVERSION, level=profile_pb2.TRAIT_LEVEL_HIGH
                    )
                ]
            ),
        )
        pairs = personality_pairs(profile, "You are a reader.", bank, 60, seed=13, omissions=Omissions())
        assert len(pairs) == 1 and pairs[0].trait == "extraversion"
        assert pairs[0].chosen in item.high and pairs[0].rejected in item.low
        chosen_high.add(pairs[0].chosen)
        rejected_low.add(pairs[0].rejected)
        again = personality_pairs(profile, "You are a reader.", bank, 60, seed=13, omissions=Omissions())
        assert again == pairs  # seeded: the same user always gets the same answers
    assert chosen_high == set(item.high) and rejected_low == set(item.low)


def test_big5chat_long_rows_pair_high_with_low_of_the_same_input(tmp_path: Path) -> None:
    path = tmp_path / "big5chat.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["train_input", "trait", "level", "train_output"])
        w.writerow(["Want to go camping?", "openness", "high", "Yes! Somewhere we've never been."])
        w.writerow(["Want to go camping?", "openness", "low", "Only at the usual campsite."])
        w.writerow(["Can you help me move?", "agreeableness", "low", "Not my problem."])
        w.writerow(["Can you help me move?", "agreeableness", "high", "Of course, when?"])
        w.writerow(["Shall we plan the trip?", "conscientiousness", "high", "Spreadsheet is ready."])
        w.writerow(["Shall we plan the trip?", "conscientiousness", "medium", "Maybe."])
    skips = SkipLog()
    items = load_big5chat(path, skips)
    assert [(i.trait, i.high, i.low) for i in items] == [
        ("openness", ("Yes! Somewhere we've never been.",), ("Only at the usual campsite.",)),
        ("agreeableness", ("Of course, when?",), ("Not my problem.",)),
    ]
    assert all(i.source == BIG5CHAT for i in items)
    assert skips.counts == {"bad_field": 1, "unpaired_row": 1}
    assert {(s.reason, s.line) for s in skips.examples} == {("bad_field", 7), ("unpaired_row", 6)}


def test_big5chat_wide_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "big5chat.parquet"
    pq.write_table(
        pa.table(
            {
                "train_input": ["Party tonight?", "Deadline moved up!"],
                "trait": ["Extraversion", "Neuroticism"],
                "high_output": ["Count me in!", "Oh no, I'll never make it."],
                "low_output": ["I'd rather stay in.", "We'll manage, no stress."],
            }
        ),
        path,
    )
    items = load_big5chat(path, SkipLog())
    assert [(i.trait, i.high[0], i.low[0]) for i in items] == [
        ("extraversion", "Count me in!", "I'd rather stay in."),
        ("neuroticism", "Oh no, I'll never make it.", "We'll manage, no stress."),
    ]


@pytest.mark.parametrize(
    ("loader", "header", "missing"),
    [
        (
            load_trait,
            ["situation", "query", "response_high1", "response_high2", "response_low1", "personality"],
            "response_low2",
        ),
        (load_big5chat, ["train_input", "trait", "level"], "train_output"),
        (load_big5chat, ["train_input", "trait", "high_output"], "low_output"),
    ],
)
def test_a_bank_file_with_a_missing_column_names_the_file_and_column(
    tmp_path: Path, loader, header, missing
) -> None:
    path = tmp_path / "bank.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, ["x"] * len(header)])
    with pytest.raises(ConfigError) as info:
        loader(path, SkipLog())
    assert str(path) in str(info.value) and repr(missing) in str(info.value)


def test_sampling_spreads_items_evenly_across_sources() -> None:
    assert _split(60, [400, 20000]) == [30, 30]
    assert _split(60, [10, 20000]) == [10, 50]
    assert _split(60, [10, 20]) == [10, 20]
    assert _split(7, [5, 5, 5]) == [3, 2, 2]

    def items(source: str, n: int) -> list[PersonalityItem]:
        return [
            PersonalityItem(f"{source}-{i}", "openness", source, f"q{i}", ("h",), ("l",)) for i in range(n)
        ]

    bank = PersonalityBank.build(items(TRAIT, 50) + items(BIG5CHAT, 80))
    picked = bank.sample("openness", 60, random.Random(1))
    assert Counter(i.source for i in picked) == {TRAIT: 30, BIG5CHAT: 30}
    assert len({i.id for i in picked}) == 60
    assert bank.sample("openness", 60, random.Random(1)) == picked
    assert bank.sample("openness", 60, random.Random(2)) != picked


def test_empty_bank_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty"):
        PersonalityBank.load(SkipLog(), builtin=False)
