"""Writing one user's shards for every planned dataset (shared by the batch command and the service)."""

from __future__ import annotations

from dataclasses import dataclass

from gravity_core.artifacts import ArtifactStore
from gravity_core.datasets import FORMAT, DatasetEntry, ShardEntry
from gravity_pairgen.builder import DatasetPlan, UserBuild
from gravity_pairgen.shards import write_shard


@dataclass(frozen=True)
class WrittenShard:
    plan: DatasetPlan
    entry: ShardEntry
    uri: str

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

    def write(self, build: UserBuild) -> list[WrittenShard]:
        return [self._one(plan, build.user_id, build.rows.get(plan.name, [])) for plan in self.plans]

    def write_empty(self, user_id: str) -> list[WrittenShard]:
        """Zero-row shards: a rejected user still counts towards their cohort being complete."""
        return [self._one(plan, user_id, []) for plan in self.plans]

    def _one(self, plan: DatasetPlan, user_id: str, rows: list) -> WrittenShard:
        meta = {**self.metadata, "gravity.dataset": plan.name, "gravity.recipe": plan.recipe.name}
        entry, uri = write_shard(
            self.store, self.prefix, plan.name, user_id, plan.kind, rows, meta, durable=self.durable
        )
        return WrittenShard(plan, entry, uri)
