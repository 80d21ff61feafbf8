"""Dataset manifests: adding a user's shards, and the service's locked read-modify-write per cohort.

The manifest lists one shard per (dataset, user); putting a user's shard replaces any earlier one, so a
reprocessed profile never duplicates rows. Shards are kept sorted by user id so the manifest of the same
build is byte-identical however users arrived.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock

from gravity_core.artifacts import ArtifactStore
from gravity_core.datasets import MANIFEST, DatasetEntry, DatasetManifest, ShardEntry, manifest_bytes
from gravity_core.skips import RecordError

DEFAULT_COHORT = "default"
_COHORT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def cohort_of(cohort_id: str) -> str:
    """The cohort directory name; ids that are not a safe path segment are rejected."""
    cohort = cohort_id.strip() or DEFAULT_COHORT
    if not _COHORT.match(cohort) or cohort.endswith("."):
        raise RecordError(
            "bad_cohort_id", f"cohort_id {cohort_id!r} must be letters, digits, '.', '_' or '-' (max 128)"
        )
    return cohort


def put_shard(manifest: DatasetManifest, dataset: str, template: DatasetEntry, shard: ShardEntry) -> None:
    entry = manifest.datasets.get(dataset)
    if entry is None:
        entry = manifest.datasets[dataset] = template.model_copy(deep=True)
    entry.kind = template.kind
    entry.dropped = list(template.dropped)
    entry.shards = sorted(
        [s for s in entry.shards if s.user_id != shard.user_id] + [shard], key=lambda s: s.user_id
    )


class ManifestStore:
    """Cohort manifests under ``<prefix>/<cohort>/manifest.json`` in the artifact store.

    :meth:`update` holds a per-cohort lock (a thread lock plus a file lock next to the manifest, so several
    processes sharing a volume serialise too) across the read, the change and the atomic write.
    """

    def __init__(self, store: ArtifactStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def rel(self, cohort: str, name: str = MANIFEST) -> str:
        return f"{self.prefix}/{cohort}/{name}" if self.prefix else f"{cohort}/{name}"

    def dir_rel(self, cohort: str) -> str:
        return f"{self.prefix}/{cohort}" if self.prefix else cohort

    def read(self, cohort: str) -> DatasetManifest | None:
        path = self.store.path(self.rel(cohort))
        if not path.is_file():
            return None
        return DatasetManifest.model_validate_json(path.read_text(encoding="utf-8"))

    @contextmanager
    def locked(self, cohort: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(cohort, threading.Lock())
        lock_path = self.store.path(self.rel(cohort, ".manifest.lock"))
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock, FileLock(str(lock_path), timeout=120):
            yield

    def update(
        self,
        cohort: str,
        shards: list[tuple[str, DatasetEntry, ShardEntry]],
        cohort_size: int,
        seed: int,
        recipe: str,
        base_model: str,
    ) -> tuple[DatasetManifest, str, str]:
        """Put ``shards`` (dataset, template entry, shard) into the cohort's manifest; returns it with its
        URI and SHA-256. The caller must hold :meth:`locked`."""
        manifest = self.read(cohort) or DatasetManifest(
            cohort_id=cohort, created_at_ms=int(time.time() * 1000)
        )
        manifest.cohort_size = max(manifest.cohort_size, cohort_size)
        manifest.seed, manifest.recipe, manifest.base_model = seed, recipe, base_model
        for dataset, template, shard in shards:
            put_shard(manifest, dataset, template, shard)
        ref = self.store.write_bytes(self.rel(cohort), manifest_bytes(manifest))
        return manifest, ref.uri, ref.sha256
