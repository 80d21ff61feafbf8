"""Writing one user's shards for every planned dataset (shared by the batch command and the service)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gravity_core.artifacts import ArtifactStore
from gravity_core.datasets import FORMAT, DatasetEntry, DatasetManifest, ShardEntry
from gravity_pairgen.builder import DatasetPlan, UserBuild
from gravity_pairgen.manifests import drop_shard, ensure_entry, put_shard
from gravity_pairgen.rows import Pair
from gravity_pairgen.shards import shard_file, write_shard


@dataclass(frozen=True)
class WrittenShard:
    """A user's shard of one dataset; ``entry`` is None when the user has no rows for it (no file)."""

    plan: DatasetPlan
    entry: ShardEntry | None
    uri: str = ""

    @property
    def template(self) -> DatasetEntry:
        return self.plan.entry()


class UserShardWriter:
    def __init__(
        self,
        store: ArtifactStore,
        prefix: str,
        plans: list[DatasetPlan],
        metadata: dict[str, str],
        durable: bool = True,
    ) -> None:
        self.store = store
        self.durable = durable
        self.prefix = prefix
        self.plans = plans
        self.metadata = {"gravity.format": FORMAT, **metadata}

    def write(self, build: UserBuild | None, user_id: str = "") -> list[WrittenShard]:
        """One result per plan; ``build`` None (a rejected profile) writes nothing."""
        if build is None:
            return [WrittenShard(plan, None) for plan in self.plans]
        return [self._one(plan, build.user_id, build.rows.get(plan.name, [])) for plan in self.plans]

    def _one(self, plan: DatasetPlan, user_id: str, rows: list[Pair]) -> WrittenShard:
        if not rows:
            return WrittenShard(plan, None)
        meta = {**self.metadata, "gravity.dataset": plan.name, "gravity.recipe": plan.recipe.name}
        entry, uri = write_shard(
            self.store, self.prefix, plan.name, user_id, plan.kind, rows, meta, durable=self.durable
        )
        return WrittenShard(plan, entry, uri)

    def path(self, dataset: str, user_id: str) -> Path:
        rel = f"{dataset}/{shard_file(user_id)}"
        return self.store.path(f"{self.prefix}/{rel}" if self.prefix else rel)

    def record(
        self, manifest: DatasetManifest, build: UserBuild | None, user_id: str, written: list[WrittenShard]
    ) -> list[Path]:
        """Put the written shards and the reader's held-out evaluation books into ``manifest``; a dataset
        without rows loses any earlier shard of the user. Returns the files of those earlier shards, to
        delete once the manifest is saved."""
        if build is not None:
            manifest.held_out[user_id] = list(build.held_out)
        else:
            manifest.held_out.pop(user_id, None)
        stale = []
        for w in written:
            if w.entry is not None:
                put_shard(manifest, w.plan.name, w.template, w.entry)
                continue
            ensure_entry(manifest, w.plan.name, w.template)
            if drop_shard(manifest, w.plan.name, user_id) is not None:
                stale.append(self.path(w.plan.name, user_id))
        return stale
