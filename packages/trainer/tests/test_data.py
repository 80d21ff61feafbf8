"""Reading shards: the bad-input cases are errors before training, bad rows are counted with shard and row."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gravity_core.artifacts import sha256_file
from gravity_core.datasets import load_manifest
from gravity_core.errors import InvalidInput, NotFound
from gravity_trainer.data import held_out_score, limit_to_steps, load_pair_set, split_rows


def _load(directory: Path, dataset: str = "gravity", kind: str = "dpo"):
    return load_pair_set(directory, load_manifest(directory), dataset, kind)


def test_reads_every_shard_and_converts_to_chat_format(make_pairs: Callable[..., Path]) -> None:
    directory = make_pairs({"gravity": 6, "user-sft": 4})
    pairs = _load(directory)
    assert (len(pairs.rows), pairs.users, pairs.shards, pairs.skips.total) == (18, 3, 3, 0)
    row = pairs.rows[0].conversational("dpo")
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    sft = _load(directory, "user-sft", "sft").rows[0].conversational("sft")
    assert set(sft) == {"prompt", "completion"} and sft["completion"][0]["role"] == "assistant"


def test_split_is_deterministic_stable_and_disjoint(make_pairs: Callable[..., Path]) -> None:
    rows = _load(make_pairs({"gravity": 40})).rows
    first = split_rows(rows, 0.2, 5)
    again = split_rows(list(reversed(rows)), 0.2, 5)
    assert [r.pair_id for r in first.eval] == [r.pair_id for r in again.eval]
    assert len(first.eval) == 5
    assert not {r.pair_id for r in first.eval} & {r.pair_id for r in first.train}
    # pairs held out beyond max_eval_rows are neither trained nor evaluated
    assert len(first.train) + len(first.eval) + first.held_out_unused == len(rows)
    # a pair's side of the split does not depend on the other pairs
    fewer = split_rows(rows[:30], 0.2, 100)
    assert {r.pair_id for r in fewer.eval} == {
        r.pair_id for r in rows[:30] if held_out_score(r.pair_id) < 0.2
    }


def test_limit_to_steps_keeps_only_what_the_steps_use(make_pairs: Callable[..., Path]) -> None:
    split = split_rows(_load(make_pairs({"gravity": 20})).rows, 0.1, 4)
    limited = limit_to_steps(split, max_steps=2, effective_batch=4, seed=1)
    assert len(limited.train) == 8 and limited.beyond_max_steps == len(split.train) - 8
    assert limit_to_steps(split, max_steps=-1, effective_batch=4, seed=1) is split


def test_bad_rows_are_skipped_with_shard_and_row(make_pairs: Callable[..., Path]) -> None:
    rows = [
        {
            "pair_id": "p1",
            "user_id": "u",
            "facet": "values",
            "trait": "",
            "prompt": "Q?",
            "chosen": "a",
            "rejected": "b",
        },
        {
            "pair_id": "p2",
            "user_id": "u",
            "facet": "values",
            "trait": "",
            "prompt": "",
            "chosen": "a",
            "rejected": "b",
        },
        {
            "pair_id": "p3",
            "user_id": "u",
            "facet": "values",
            "trait": "",
            "prompt": "Q?",
            "chosen": "same",
            "rejected": "same",
        },
        {
            "pair_id": "p1",
            "user_id": "u",
            "facet": "values",
            "trait": "",
            "prompt": "Q?",
            "chosen": "c",
            "rejected": "d",
        },
        {
            "pair_id": "",
            "user_id": "u",
            "facet": "values",
            "trait": "",
            "prompt": "Q?",
            "chosen": "c",
            "rejected": "d",
        },
        {
            "pair_id": "p6",
            "user_id": "u",
            "facet": "values",
            "trait": "",
            "prompt": "Q?",
            "chosen": None,
            "rejected": "d",
        },
    ]
    pairs = _load(make_pairs(rows={"gravity": {"u": rows}}))
    assert [r.pair_id for r in pairs.rows] == ["p1"]
    assert dict(pairs.skips.counts) == {
        "empty_text": 2,
        "identical_pair": 1,
        "duplicate_pair_id": 1,
        "missing_pair_id": 1,
    }
    where = {s.reason: s.where() for s in pairs.skips.examples}
    assert where["identical_pair"] == "gravity/u.parquet:3"
    assert where["duplicate_pair_id"] == "gravity/u.parquet:4"


def _rewrite_manifest(directory: Path, edit: Callable[[dict], None]) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_checksum_mismatch_is_an_error(make_pairs: Callable[..., Path]) -> None:
    directory = make_pairs({"gravity": 4})
    shard = directory / "gravity" / "A1JAPAN.parquet"
    pq.write_table(pa.table({"x": ["tampered"]}), shard)
    with pytest.raises(InvalidInput, match="does not match its manifest checksum"):
        _load(directory)


def test_missing_shard_is_an_error(make_pairs: Callable[..., Path]) -> None:
    directory = make_pairs({"gravity": 4})
    (directory / "gravity" / "A2BRAZIL.parquet").unlink()
    with pytest.raises(NotFound, match="missing"):
        _load(directory)


def test_corrupt_parquet_with_matching_checksum_is_an_error(make_pairs: Callable[..., Path]) -> None:
    directory = make_pairs({"gravity": 4})
    shard = directory / "gravity" / "A1JAPAN.parquet"
    shard.write_bytes(b"PAR1 this is not parquet")

    def fix(data: dict) -> None:
        data["datasets"]["gravity"]["shards"][0]["sha256"] = sha256_file(shard)

    _rewrite_manifest(directory, fix)
    with pytest.raises(InvalidInput, match="not a readable parquet file"):
        _load(directory)


def test_missing_columns_and_row_count_mismatch_are_errors(make_pairs: Callable[..., Path]) -> None:
    directory = make_pairs({"gravity": 4})
    shard = directory / "gravity" / "A1JAPAN.parquet"
    pq.write_table(pa.table({"pair_id": ["a"], "prompt": ["q"]}), shard)

    def fix(data: dict) -> None:
        data["datasets"]["gravity"]["shards"][0]["sha256"] = sha256_file(shard)

    _rewrite_manifest(directory, fix)
    with pytest.raises(InvalidInput, match="lacks column"):
        _load(directory)

    other = make_pairs({"gravity": 4}, name="other")
    _rewrite_manifest(other, lambda d: d["datasets"]["gravity"]["shards"][1].update(rows=99))
    with pytest.raises(InvalidInput, match="the manifest says 99"):
        _load(other)


def test_empty_shards(make_pairs: Callable[..., Path]) -> None:
    # a reader with no pairs (a zero-row shard the manifest declares) is counted; an empty dataset is an error
    directory = make_pairs(
        rows={
            "gravity": {
                "u1": [],
                "u2": [
                    {
                        "pair_id": "p",
                        "user_id": "u2",
                        "facet": "values",
                        "trait": "",
                        "prompt": "Q",
                        "chosen": "a",
                        "rejected": "b",
                    }
                ],
            }
        }
    )
    pairs = _load(directory)
    assert len(pairs.rows) == 1 and pairs.skips.counts["empty_shard"] == 1
    empty = make_pairs(rows={"gravity": {"u1": []}}, name="empty")
    with pytest.raises(InvalidInput, match="no usable rows"):
        _load(empty)


def test_zero_byte_shard_is_an_error(make_pairs: Callable[..., Path]) -> None:
    directory = make_pairs({"gravity": 4})
    shard = directory / "gravity" / "A3INDIA.parquet"
    shard.write_bytes(b"")

    def fix(data: dict) -> None:
        data["datasets"]["gravity"]["shards"][2]["sha256"] = sha256_file(shard)

    _rewrite_manifest(directory, fix)
    with pytest.raises(InvalidInput, match=r"A3INDIA\.parquet is not a readable parquet file"):
        _load(directory)


def test_wrong_kind_and_unknown_dataset(make_pairs: Callable[..., Path]) -> None:
    directory = make_pairs({"gravity": 4})
    with pytest.raises(InvalidInput, match="holds DPO rows"):
        _load(directory, "gravity", "sft")
    with pytest.raises(NotFound, match="no dataset 'pref-align'"):
        _load(directory, "pref-align")


def test_a_shard_built_from_a_held_out_book_is_refused(make_pairs: Callable[..., Path]) -> None:
    rows = [
        {
            "pair_id": f"p{i}",
            "user_id": "A1JAPAN",
            "facet": "summary",
            "trait": "",
            "prompt": "Which book would you rather read?",
            "chosen": f"A book about tide pools, volume {i}.",
            "rejected": f"A book about tax law, volume {i}.",
            "provenance": [f"asin:B{i}", f"asin:B{i + 10}"],
        }
        for i in range(4)
    ]
    data = {"gravity": {"A1JAPAN": rows}}
    clean = make_pairs(rows=data, name="clean", held_out={"U2": ["B99"]})
    assert len(_load(clean).rows) == 4
    # another reader's evaluation book in this reader's row: the dataset is refused before training
    leaky = make_pairs(rows=data, name="leaky", held_out={"U2": ["B12"]})
    with pytest.raises(InvalidInput) as err:
        _load(leaky)
    assert "B12" in err.value.message and "holds out for evaluation" in err.value.message
