"""Reading a pair dataset for training: verified shards, validated rows, a deterministic held-out split.

Shard-level problems (missing, checksum mismatch, unreadable or zero-byte parquet, missing columns, row count
different from the manifest, no rows in the whole dataset) are errors raised before any training starts; a
zero-row shard the manifest declares (a reader with nothing in this dataset) is counted. Row-level problems (empty text,
chosen identical to rejected, duplicate pair ids, prompts longer than the context) skip that row and are
counted with shard and row number, so a run never drops data silently. A shard with a row built from a book
the manifest holds out for evaluation is refused outright: pairgen never writes one, and training on it
would make the evaluation unfair.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravity_core.datasets import (
    DPO_COLUMNS,
    SFT_COLUMNS,
    DatasetManifest,
    books_of,
    shard_provenance,
    verify_shards,
)
from gravity_core.errors import InvalidInput
from gravity_core.skips import SkipLog


@dataclass(frozen=True)
class PairRow:
    pair_id: str
    user_id: str
    facet: str
    prompt: str
    chosen: str  # the completion for SFT rows
    rejected: str  # empty for SFT rows
    source: str  # shard path relative to the dataset directory
    line: int  # 1-based row number in the shard

    def conversational(self, kind: str) -> dict[str, Any]:
        """TRL's conversational format, so the model's chat template is applied exactly as at inference."""
        prompt = [{"role": "user", "content": self.prompt}]
        if kind == "dpo":
            return {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": self.chosen}],
                "rejected": [{"role": "assistant", "content": self.rejected}],
            }
        return {"prompt": prompt, "completion": [{"role": "assistant", "content": self.chosen}]}


@dataclass
class PairSet:
    kind: str
    rows: list[PairRow]
    shards: int
    users: int
    skips: SkipLog = field(default_factory=SkipLog)

    def counts_by_facet(self) -> dict[str, int]:
        return dict(Counter(r.facet for r in self.rows))


@dataclass
class Split:
    train: list[PairRow]
    eval: list[PairRow]
    # held out (hash below eval_fraction) but beyond max_eval_rows: neither trained nor evaluated on
    held_out_unused: int
    # train rows left out because max_steps needs fewer
    beyond_max_steps: int = 0


def load_pair_set(directory: str | Path, manifest: DatasetManifest, dataset: str, kind: str) -> PairSet:
    import pyarrow.parquet as pq

    entry = manifest.dataset(dataset)
    if entry.kind != kind:
        raise InvalidInput(
            "dataset",
            f"dataset {dataset!r} holds {entry.kind.upper()} rows; this recipe trains on {kind.upper()} rows",
        )
    paths = verify_shards(directory, manifest, dataset)
    columns = DPO_COLUMNS if kind == "dpo" else SFT_COLUMNS
    held_out = manifest.held_out_books()
    skips = SkipLog()
    rows: list[PairRow] = []
    seen: dict[str, str] = {}
    for shard, path in zip(entry.shards, paths, strict=True):
        try:
            table = pq.read_table(path)
        except Exception as exc:
            raise InvalidInput("pairs", f"shard {shard.path} is not a readable parquet file: {exc}") from None
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise InvalidInput("pairs", f"shard {shard.path} lacks column(s) {', '.join(missing)}")
        _refuse_held_out(shard.path, shard_provenance(table.schema.metadata), held_out)
        if table.num_rows != shard.rows:
            raise InvalidInput(
                "pairs", f"shard {shard.path} has {table.num_rows} rows, the manifest says {shard.rows}"
            )
        if table.num_rows == 0:
            # pairgen writes a zero-row shard for a reader with nothing in this dataset; the manifest says so
            skips.add(
                "empty_shard",
                f"reader {shard.user_id} has no pairs in {dataset}",
                shard.path,
                0,
                shard.user_id,
            )
            continue
        data = table.select(list(columns)).to_pydict()
        for i in range(table.num_rows):
            row = {c: data[c][i] for c in columns}
            parsed = _parse_row(row, kind, shard.path, i + 1, skips)
            if parsed is None:
                continue
            if parsed.pair_id in seen:
                skips.add(
                    "duplicate_pair_id",
                    f"pair {parsed.pair_id} already read from {seen[parsed.pair_id]}",
                    shard.path,
                    i + 1,
                    parsed.pair_id,
                )
                continue
            seen[parsed.pair_id] = f"{shard.path}:{i + 1}"
            rows.append(parsed)
    if not rows:
        raise InvalidInput(
            "pairs", f"dataset {dataset!r} has no usable rows ({'; '.join(skips.summary_lines(3))})"
        )
    return PairSet(kind, rows, len(paths), len({s.user_id for s in entry.shards}), skips)


def _refuse_held_out(source: str, provenance: dict[str, list[str]], held_out: set[str]) -> None:
    for pair, books in books_of(provenance).items():
        hit = sorted(books & held_out)
        if hit:
            raise InvalidInput(
                "pairs",
                f"shard {source}: pair {pair} was built from {hit[0]}, a book the manifest holds out for "
                "evaluation; refusing to train on it",
            )


def _parse_row(row: dict[str, Any], kind: str, source: str, line: int, skips: SkipLog) -> PairRow | None:
    pair_id = str(row.get("pair_id") or "").strip()
    texts = ("prompt", "chosen", "rejected") if kind == "dpo" else ("prompt", "completion")
    for name in texts:
        value = row.get(name)
        if not isinstance(value, str) or not value.strip():
            skips.add("empty_text", f"{name} is empty", source, line, pair_id)
            return None
    if not pair_id:
        skips.add("missing_pair_id", "pair_id is empty", source, line)
        return None
    if kind == "dpo" and row["chosen"].strip() == row["rejected"].strip():
        skips.add("identical_pair", "chosen and rejected are the same text", source, line, pair_id)
        return None
    return PairRow(
        pair_id=pair_id,
        user_id=str(row.get("user_id") or ""),
        facet=str(row.get("facet") or ""),
        prompt=row["prompt"],
        chosen=row["chosen"] if kind == "dpo" else row["completion"],
        rejected=row["rejected"] if kind == "dpo" else "",
        source=source,
        line=line,
    )


def held_out_score(pair_id: str) -> float:
    """A pair's place in [0, 1): stable across runs, machines and dataset growth."""
    return int.from_bytes(hashlib.sha256(pair_id.encode("utf-8")).digest()[:8], "big") / 2**64


def split_rows(rows: list[PairRow], eval_fraction: float, max_eval_rows: int) -> Split:
    """Held out: pairs whose hash is below ``eval_fraction`` (at least one), the lowest ``max_eval_rows`` evaluated."""
    if len(rows) < 2:
        raise InvalidInput(
            "pairs", f"need at least 2 usable pairs for a train and a held-out split, got {len(rows)}"
        )
    scored = sorted(rows, key=lambda r: held_out_score(r.pair_id))
    held = [r for r in scored if held_out_score(r.pair_id) < eval_fraction] or scored[:1]
    evaluated = held[:max_eval_rows]
    held_ids = {r.pair_id for r in held}
    train = [r for r in rows if r.pair_id not in held_ids]
    if not train:
        raise InvalidInput("pairs", "every pair fell into the held-out split; lower eval_fraction")
    return Split(train=train, eval=evaluated, held_out_unused=len(held) - len(evaluated))


def limit_to_steps(split: Split, max_steps: int, effective_batch: int, seed: int) -> Split:
    """With max_steps set, keep only the pairs those steps consume (a seeded sample), so nothing else is prepared."""
    if max_steps <= 0:
        return split
    needed = max_steps * effective_batch
    if needed >= len(split.train):
        return split
    chosen = random.Random(seed).sample(split.train, needed)
    return Split(
        train=chosen,
        eval=split.eval,
        held_out_unused=split.held_out_unused,
        beyond_max_steps=len(split.train) - needed,
    )


@dataclass
class LengthReport:
    kept: list[PairRow]
    # rows whose completion will be cut at max_length (trained on, but partly)
    truncated: int
    # pair_id -> approximate tokens of prompt + longest completion (for length-grouped batching)
    lengths: dict[str, int] = field(default_factory=dict)


def filter_by_length(rows: list[PairRow], tokenizer: Any, max_length: int, skips: SkipLog) -> LengthReport:
    """Skip rows whose chat-formatted prompt alone reaches ``max_length`` (TRL would drop them silently)."""
    prompts = [[{"role": "user", "content": r.prompt}] for r in rows]
    prompt_lens = [len(ids) for ids in _chat_token_ids(tokenizer, prompts)]
    completion_lens = [
        max(len(c), len(r))
        for c, r in zip(
            tokenizer([r.chosen for r in rows], add_special_tokens=False)["input_ids"],
            tokenizer([r.rejected or " " for r in rows], add_special_tokens=False)["input_ids"],
            strict=True,
        )
    ]
    kept: list[PairRow] = []
    lengths: dict[str, int] = {}
    truncated = 0
    for row, p_len, c_len in zip(rows, prompt_lens, completion_lens, strict=True):
        if p_len >= max_length:
            skips.add(
                "prompt_too_long",
                f"prompt is {p_len} tokens, max_length is {max_length}",
                row.source,
                row.line,
                row.pair_id,
            )
            continue
        # +2: the end-of-turn tokens the chat template appends to the completion
        if p_len + c_len + 2 > max_length:
            truncated += 1
        kept.append(row)
        lengths[row.pair_id] = min(max_length, p_len + c_len + 2)
    return LengthReport(kept, truncated, lengths)


def _chat_token_ids(tokenizer: Any, conversations: list[list[dict[str, str]]]) -> list[list[int]]:
    out = tokenizer.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True)
    if hasattr(out, "keys"):  # transformers 5 returns a BatchEncoding
        out = out["input_ids"]
    return [list(ids) for ids in out]


def materialize(work: Path, split: Split, kind: str, lengths: dict[str, int], state: Any) -> tuple[Any, Any]:
    """The train and eval sets as Hugging Face datasets, written once under ``work/data``.

    On resume the same files are loaded again, so the tokenised data and the precomputed reference
    log-probabilities that TRL caches next to them are reused instead of recomputed. ``state`` is accelerate's
    PartialState: the main process writes, the others wait and read.
    """
    import os
    import shutil

    from datasets import Dataset, load_from_disk

    out = []
    for name, rows in (("train", split.train), ("eval", split.eval)):
        path = work / "data" / name
        with state.main_process_first():
            if not (path / "state.json").is_file() and state.is_main_process:
                records = [
                    {**r.conversational(kind), "pair_id": r.pair_id, "length": lengths.get(r.pair_id, 0)}
                    for r in rows
                ]
                tmp = path.with_name(f".{name}.tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                Dataset.from_list(records).save_to_disk(str(tmp))
                os.replace(tmp, path)
        ds = load_from_disk(str(path))
        if len(ds) != len(rows):
            raise InvalidInput("out", f"{path} holds {len(ds)} rows, expected {len(rows)}; remove {work}")
        out.append(ds)
    return out[0], out[1]
