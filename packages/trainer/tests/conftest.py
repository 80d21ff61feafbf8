"""Small pair datasets in the pairgen directory layout (gravity_core.datasets), built with pyarrow."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gravity_core.artifacts import sha256_file
from gravity_core.datasets import (
    DPO_COLUMNS,
    PROVENANCE_KEY,
    SFT_COLUMNS,
    DatasetEntry,
    DatasetManifest,
    ShardEntry,
    manifest_bytes,
)

READERS = [
    (
        "A1JAPAN",
        "You are a young female from Japan. You enjoy reading Poetry, Literary Fiction.",
        "High Openness",
    ),
    (
        "A2BRAZIL",
        "You are a middle-aged male from Brazil. You enjoy reading History, Philosophy.",
        "Low Extraversion",
    ),
    (
        "A3INDIA",
        "You are a senior female from India. You enjoy reading Mystery, Biographies.",
        "High Conscientiousness",
    ),
]
QUESTIONS = [
    ("Which kind of book would you rather read next?", "{g}", "Business & Money"),
    (
        "A friend invites you to a loud party tonight. What do you do?",
        "I stay home with a good book.",
        "I go and dance all night!",
    ),
    (
        "Which scenario feels right to you?",
        "Maria finishes work and walks in the park with friends.",
        "John skips every outing to work late.",
    ),
    (
        "How should I spend my time at the country fair?",
        "Explore each artist's booth and talk to the creators.",
        "Queue for the most popular food stall.",
    ),
]


def _preamble(reader: tuple[str, str, str]) -> str:
    return f"{reader[1]} You have the following values: family and tradition matter. and personality traits: {reader[2]}."


def dpo_rows(user: str, n: int) -> list[dict[str, Any]]:
    reader = next(r for r in READERS if r[0] == user)
    genre = reader[1].split("reading ")[1].split(",")[0]
    rows = []
    for i in range(n):
        question, chosen, rejected = QUESTIONS[i % len(QUESTIONS)]
        rows.append(
            {
                "pair_id": hashlib.sha256(f"{user}:{i}".encode()).hexdigest()[:24],
                "user_id": user,
                "facet": ("category", "personality", "values", "personality")[i % 4],
                "trait": "extraversion" if i % 4 == 1 else "",
                "prompt": f"{_preamble(reader)} {question} (#{i})",
                "chosen": chosen.format(g=genre),
                "rejected": rejected,
            }
        )
    return rows


def sft_rows(user: str, n: int) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in r.items() if k != "rejected"} | {"completion": r["chosen"]}
        for r in dpo_rows(user, n)
    ]


def write_pairs_dir(
    root: Path,
    datasets: dict[str, dict[str, list[dict[str, Any]]]],
    base_model: str = "smollm2-135m",
    cohort: str = "test",
    held_out: dict[str, list[str]] | None = None,
) -> Path:
    """``datasets``: name -> user -> rows (DPO when rows have "rejected"; a row's optional "provenance" list
    goes into the shard's provenance metadata). Returns the directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    manifest = DatasetManifest(
        cohort_id=cohort, cohort_size=0, base_model=base_model, created_at_ms=1, held_out=held_out or {}
    )
    users: set[str] = set()
    for name, by_user in datasets.items():
        first = next((rows[0] for rows in by_user.values() if rows), {})
        kind = (
            "dpo"
            if "rejected" in first or name in ("gravity", "pref-align") or name.startswith("gravity-no-")
            else "sft"
        )
        columns = DPO_COLUMNS if kind == "dpo" else SFT_COLUMNS
        entry = DatasetEntry(kind=kind)
        for user, rows in sorted(by_user.items()):
            users.add(user)
            rel = f"{name}/{user}.parquet"
            (root / name).mkdir(parents=True, exist_ok=True)
            table = pa.table({c: pa.array([r.get(c) for r in rows], type=pa.string()) for c in columns})
            provenance = {r["pair_id"]: r["provenance"] for r in rows if "provenance" in r}
            if provenance:
                table = table.replace_schema_metadata({PROVENANCE_KEY: json.dumps(provenance).encode()})
            pq.write_table(table, root / rel)
            entry.shards.append(
                ShardEntry(
                    path=rel,
                    user_id=user,
                    rows=len(rows),
                    sha256=sha256_file(root / rel),
                    counts_by_facet=dict(Counter(r.get("facet") or "" for r in rows)),
                )
            )
        manifest.datasets[name] = entry
    manifest.cohort_size = len(users)
    (root / "manifest.json").write_bytes(manifest_bytes(manifest))
    return root


@pytest.fixture
def make_pairs(tmp_path: Path) -> Callable[..., Path]:
    """make_pairs(datasets={"gravity": ("dpo", 8)}) -> a pairs dir with 3 readers; or pass explicit rows."""

    def build(
        counts: dict[str, int] | None = None,
        rows: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
        name: str = "pairs",
        **kw: Any,
    ) -> Path:
        data: dict[str, dict[str, list[dict[str, Any]]]] = dict(rows or {})
        for dataset, n in (counts or {}).items():
            make = sft_rows if dataset in ("gravity-sft", "user-sft") else dpo_rows
            data[dataset] = {r[0]: make(r[0], n) for r in READERS}
        return write_pairs_dir(tmp_path / name, data, **kw)

    return build
