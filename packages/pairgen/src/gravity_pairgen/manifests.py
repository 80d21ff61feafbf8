"""Dataset manifests: adding a user's shards, and the service's locked read-modify-write per cohort.

The manifest lists one non-empty shard per (dataset, user); putting a user's shard replaces any earlier one,
so a reprocessed profile never duplicates rows. Shards are kept sorted by user id so the manifest of the
same build is byte-identical however users arrived.

The service also keeps ``accounting.json`` next to each cohort's manifest: the cohort size the profiler
declared, the users whose profile was rejected (dead-lettered), and per dataset the users whose profile
yielded no rows. Rejected users leave the manifest's ``cohort_size`` (declared minus rejected), so a cohort
with a bad profile still completes; a dataset is complete once every remaining user has a shard in it or
is known to have no rows for it. Zero-row shards are never written: trainers treat them as errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field

from gravity_core.artifacts import ArtifactStore
from gravity_core.datasets import MANIFEST, DatasetEntry, DatasetManifest, ShardEntry, manifest_bytes
from gravity_core.identifiers import RULE, is_segment
from gravity_core.skips import RecordError

DEFAULT_COHORT = "default"
ACCOUNTING = "accounting.json"


def cohort_of(cohort_id: str) -> str:
    """The cohort directory name; ids that are not a safe path segment are rejected."""
    cohort = cohort_id.strip() or DEFAULT_COHORT
    if not is_segment(cohort):
        raise RecordError("bad_cohort_id", f"cohort_id {cohort_id[:64]!r} must be {RULE}")
    return cohort


def put_shard(manifest: DatasetManifest, dataset: str, template: DatasetEntry, shard: ShardEntry) -> None:
    entry = ensure_entry(manifest, dataset, template)
    entry.shards = sorted(
        [s for s in entry.shards if s.user_id != shard.user_id] + [shard], key=lambda s: s.user_id
    )


def ensure_entry(manifest: DatasetManifest, dataset: str, template: DatasetEntry) -> DatasetEntry:
    entry = manifest.datasets.get(dataset)
    if entry is None:
        entry = manifest.datasets[dataset] = template.model_copy(deep=True)
    entry.kind = template.kind
    entry.dropped = list(template.dropped)
    return entry


def drop_shard(manifest: DatasetManifest, dataset: str, user_id: str) -> ShardEntry | None:
    entry = manifest.datasets.get(dataset)
    if entry is None:
        return None
    gone = [s for s in entry.shards if s.user_id == user_id]
    entry.shards = [s for s in entry.shards if s.user_id != user_id]
    return gone[0] if gone else None


class CohortAccounting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    declared_cohort_size: int = 0
    rejected: dict[str, str] = Field(default_factory=dict)  # user -> reason
    # Members whose message named another cohort size than the first one (kept out of the size).
    size_conflicts: dict[str, int] = Field(default_factory=dict)

    def declare(self, size: int, user_id: str) -> None:
        """The first declared size is the cohort's: a later message cannot inflate (or shrink) it."""
        if size <= 0:
            return
        if self.declared_cohort_size == 0:
            self.declared_cohort_size = size
        elif size != self.declared_cohort_size:
            self.size_conflicts[user_id] = size

    empty: dict[str, list[str]] = Field(default_factory=dict)  # dataset -> users with no rows

    def mark_empty(self, dataset: str, user_id: str, empty: bool) -> None:
        users = set(self.empty.get(dataset, []))
        users.add(user_id) if empty else users.discard(user_id)
        self.empty[dataset] = sorted(users)

    def cohort_size(self) -> int:
        return max(0, self.declared_cohort_size - len(self.rejected))

    def members_seen(self, manifest: DatasetManifest | None) -> set[str]:
        """Every member this cohort has accounted for so far: with shards or empty in a dataset, or rejected."""
        seen = set(self.rejected) | {u for users in self.empty.values() for u in users}
        if manifest is not None:
            seen |= {s.user_id for entry in manifest.datasets.values() for s in entry.shards}
        return seen

    def complete(self, manifest: DatasetManifest, dataset: str) -> bool:
        size = self.cohort_size()
        entry = manifest.datasets.get(dataset)
        have = {s.user_id for s in entry.shards} if entry else set()
        have |= set(self.empty.get(dataset, []))
        return size > 0 and len(have) >= size


class ManifestStore:
    """Cohort manifests under ``<prefix>/<cohort>/manifest.json`` in the artifact store.

    :meth:`locked` holds a per-cohort lock (a thread lock plus a file lock next to the manifest, so several
    processes sharing a volume serialise too) across reading, changing and atomically writing the
    manifest, the accounting and the shards.
    """

    def __init__(self, store: ArtifactStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def dir_rel(self, cohort: str) -> str:
        return f"{self.prefix}/{cohort}" if self.prefix else cohort

    def rel(self, cohort: str, name: str = MANIFEST) -> str:
        return f"{self.dir_rel(cohort)}/{name}"

    def read(self, cohort: str) -> DatasetManifest | None:
        path = self.store.path(self.rel(cohort))
        if not path.is_file():
            return None
        return DatasetManifest.model_validate_json(path.read_text(encoding="utf-8"))

    def read_accounting(self, cohort: str) -> CohortAccounting:
        path = self.store.path(self.rel(cohort, ACCOUNTING))
        if not path.is_file():
            return CohortAccounting()
        return CohortAccounting.model_validate_json(path.read_text(encoding="utf-8"))

    @contextmanager
    def locked(self, cohort: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(cohort, threading.Lock())
        lock_path = self.store.path(self.rel(cohort, ".manifest.lock"))
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock, FileLock(str(lock_path), timeout=120):
            yield

    def load(self, cohort: str) -> tuple[DatasetManifest, CohortAccounting]:
        manifest = self.read(cohort) or DatasetManifest(
            cohort_id=cohort, created_at_ms=int(time.time() * 1000)
        )
        return manifest, self.read_accounting(cohort)

    def save(self, cohort: str, manifest: DatasetManifest, accounting: CohortAccounting) -> tuple[str, str]:
        """Write the accounting, then the manifest (each atomic); returns the manifest's URI and SHA-256.
        The caller must hold :meth:`locked`."""
        manifest.cohort_size = accounting.cohort_size()
        self.store.write_json(self.rel(cohort, ACCOUNTING), accounting.model_dump(mode="json"))
        ref = self.store.write_bytes(self.rel(cohort), manifest_bytes(manifest))
        return ref.uri, ref.sha256
