"""Parquet shards in the gravity_core.datasets layout: one file per (dataset, user).

Columns are exactly ``DPO_COLUMNS`` or ``SFT_COLUMNS``. Each row's provenance ids (statement and
scenario ids, SJT item ids, asins, genres) travel in the file's key-value metadata under
``gravity.provenance`` (a JSON object pair_id -> ids), so the column contract the trainer reads stays
fixed. Files are written atomically through the artifact store; the same user always maps to the same file
name, so rebuilding a user replaces their shard.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from gravity_core.artifacts import ArtifactStore
from gravity_core.datasets import DPO_COLUMNS, PROVENANCE_KEY, SFT_COLUMNS, ShardEntry, shard_provenance
from gravity_core.identifiers import is_segment
from gravity_pairgen.rows import Pair

_schemas: dict[str, object] = {}


def shard_file(user_id: str) -> str:
    """A file name for the user's shard: the id itself when it is filesystem-safe, else a safe form + hash."""
    if is_segment(user_id) and len(user_id) <= 100:
        return f"{user_id}.parquet"
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", user_id).strip("_")[:60] or "user"
    return f"{safe}-{hashlib.sha256(user_id.encode()).hexdigest()[:12]}.parquet"


def _schema(kind: str) -> object:
    import pyarrow as pa

    if kind not in _schemas:
        columns = DPO_COLUMNS if kind == "dpo" else SFT_COLUMNS
        _schemas[kind] = pa.schema([(c, pa.string()) for c in columns])
    return _schemas[kind]


def shard_bytes(rows: Sequence[Pair], user_id: str, kind: str, metadata: dict[str, str]) -> bytes:
    """The parquet file for ``rows`` (deterministic: the same rows give the same bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[str]] = {
        "pair_id": [r.pair_id for r in rows],
        "user_id": [user_id] * len(rows),
        "facet": [r.facet for r in rows],
        "trait": [r.trait for r in rows],
        "prompt": [r.prompt for r in rows],
    }
    if kind == "dpo":
        columns["chosen"] = [r.chosen for r in rows]
        columns["rejected"] = [r.rejected for r in rows]
    else:
        columns["completion"] = [r.chosen for r in rows]
    meta = {k.encode(): v.encode() for k, v in sorted(metadata.items())}
    meta[PROVENANCE_KEY] = json.dumps(
        {r.pair_id: list(r.provenance) for r in rows}, separators=(",", ":"), ensure_ascii=False
    ).encode()
    schema = _schema(kind).with_metadata(meta)  # type: ignore[attr-defined]
    table = pa.Table.from_pydict(columns, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy", use_dictionary=True, write_statistics=False)
    return bytes(sink.getvalue())


def write_shard(
    store: ArtifactStore,
    prefix: str,
    dataset: str,
    user_id: str,
    kind: str,
    rows: Sequence[Pair],
    metadata: dict[str, str],
    durable: bool = True,
) -> tuple[ShardEntry, str]:
    """Write one shard under ``prefix``; returns its manifest entry and its URI.

    ``durable`` fsyncs each file (the service: a committed offset promises the shard is on disk). A batch
    build turns it off: its directory only appears once complete, and readers verify shard checksums.
    """
    rel = f"{dataset}/{shard_file(user_id)}"
    data = shard_bytes(rows, user_id, kind, metadata)
    target = f"{prefix}/{rel}" if prefix else rel
    ref = store.write_bytes(target, data, durable=durable)
    sha, uri = ref.sha256, ref.uri
    counts = dict(sorted(Counter(r.facet for r in rows).items()))
    entry = ShardEntry(path=rel, user_id=user_id, rows=len(rows), sha256=sha, counts_by_facet=counts)
    return entry, uri


def read_provenance(path: str | Path) -> dict[str, list[str]]:
    """pair_id -> provenance ids of a shard."""
    import pyarrow.parquet as pq

    return shard_provenance(pq.read_schema(path).metadata)
