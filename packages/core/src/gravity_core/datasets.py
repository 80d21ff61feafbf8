"""The preference-dataset layout shared by the pair generator (writer) and the trainer (reader).

A dataset directory::

    DIR/manifest.json                    DatasetManifest (below)
    DIR/<dataset>/<shard>.parquet        one shard per user and dataset

Datasets: ``gravity`` (DPO), ``gravity-sft`` (SFT, §4.4), ``user-sft`` (SFT), ``pref-align`` (DPO), and
ablations ``gravity-no-<facet>`` (DPO); their names, and the facets', are defined in :mod:`gravity_core.names`. DPO shards have columns pair_id, user_id, facet, trait, prompt,
chosen, rejected; SFT shards pair_id, user_id, facet, trait, prompt, completion. ``prompt`` is the user
turn as plain text; the trainer applies the model's chat template. ``datasets.load_dataset("parquet",
data_files=...)`` reads any shard set. Each shard's parquet metadata maps pair ids to the ids the pair was
built from (``asin:<parent_asin>``, ``genre:<name>``, statement and item ids) under :data:`PROVENANCE_KEY`.

The manifest records the evaluation plan and each reader's held-out evaluation books (gravity_core.targets):
no row of any dataset may be built from one, which the trainer checks again before it trains.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gravity_core.artifacts import sha256_file
from gravity_core.config import EvaluationSettings
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.names import FULL_RECIPE

MANIFEST = "manifest.json"
FORMAT = "gravity-pairs/v1"
DPO_COLUMNS = ("pair_id", "user_id", "facet", "trait", "prompt", "chosen", "rejected")
SFT_COLUMNS = ("pair_id", "user_id", "facet", "trait", "prompt", "completion")
PROVENANCE_KEY = b"gravity.provenance"
BOOK_PREFIX = "asin:"


class ShardEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str  # relative to the dataset directory
    user_id: str
    rows: int
    sha256: str
    counts_by_facet: dict[str, int] = Field(default_factory=dict)


class DatasetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["dpo", "sft"]
    # For ablations: the facets (or "personality:<trait>") removed.
    dropped: list[str] = Field(default_factory=list)
    shards: list[ShardEntry] = Field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def counts(self) -> dict[str, dict[str, int]]:
        """user -> facet -> rows."""
        out: dict[str, dict[str, int]] = {}
        for s in self.shards:
            per = out.setdefault(s.user_id, {})
            for facet, n in s.counts_by_facet.items():
                per[facet] = per.get(facet, 0) + n
        return out


class DatasetManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    cohort_id: str = ""
    cohort_size: int = 0
    seed: int = 13
    recipe: str = FULL_RECIPE
    # The writer model the prompts were built for (trainers refuse a different base unless forced).
    base_model: str = ""
    created_at_ms: int = 0
    datasets: dict[str, DatasetEntry] = Field(default_factory=dict)
    # How evaluation books were chosen, and each reader's (user -> parent_asins, in evaluation order).
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    held_out: dict[str, list[str]] = Field(default_factory=dict)

    def held_out_books(self) -> set[str]:
        """Every reader's evaluation books: no training row may use one."""
        return {asin for books in self.held_out.values() for asin in books}

    def users(self, dataset: str) -> set[str]:
        return {s.user_id for s in self.dataset(dataset).shards}

    def dataset(self, name: str) -> DatasetEntry:
        if name not in self.datasets:
            raise NotFound(
                "dataset",
                f"manifest has no dataset {name!r} (has: {', '.join(sorted(self.datasets)) or 'none'})",
            )
        return self.datasets[name]

    def complete(self, dataset: str) -> bool:
        return self.cohort_size > 0 and len(self.users(dataset)) >= self.cohort_size


def manifest_bytes(manifest: DatasetManifest) -> bytes:
    return json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True).encode("utf-8")


def manifest_sha256(manifest: DatasetManifest) -> str:
    return hashlib.sha256(manifest_bytes(manifest)).hexdigest()


def load_manifest(directory: str | Path) -> DatasetManifest:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise NotFound("pairs", f"{directory} has no {MANIFEST}")
    try:
        manifest = DatasetManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidInput("pairs", f"{path} is not a valid manifest: {exc}") from None
    if manifest.format != FORMAT:
        raise InvalidInput("pairs", f"{path} has format {manifest.format!r}, expected {FORMAT!r}")
    return manifest


def books_of(provenance: dict[str, list[str]]) -> dict[str, set[str]]:
    """pair_id -> the parent_asins a pair was built from, from a shard's provenance map."""
    return {
        pair: {i[len(BOOK_PREFIX) :] for i in ids if i.startswith(BOOK_PREFIX)}
        for pair, ids in provenance.items()
    }


def shard_provenance(metadata: dict[bytes, bytes] | None) -> dict[str, list[str]]:
    """The provenance map stored in a shard's parquet schema metadata (empty when absent)."""
    raw = (metadata or {}).get(PROVENANCE_KEY)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def verify_shards(directory: str | Path, manifest: DatasetManifest, dataset: str) -> list[Path]:
    """Paths of the dataset's shards after checking each exists and matches its checksum."""
    entry = manifest.dataset(dataset)
    if not entry.shards:
        raise InvalidInput("pairs", f"dataset {dataset!r} in {directory} has no shards")
    out = []
    for shard in entry.shards:
        path = Path(directory) / shard.path
        if not path.is_file():
            raise NotFound("pairs", f"shard {shard.path} listed in the manifest is missing")
        if sha256_file(path) != shard.sha256:
            raise InvalidInput(
                "pairs", f"shard {shard.path} does not match its manifest checksum (corrupt or modified)"
            )
        out.append(path)
    return out
