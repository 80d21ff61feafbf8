"""The service's durable state in the artifact store (a local dir, or a volume in Kubernetes).

profiler/
  catalog.sqlite                 item metadata received over IngestRecords (kept across restarts)
  profiles/<key>.json            the latest profile of each user (protobuf JSON), replaced on rebuild
  pending/<cohort>/<key>.pb      accepted, not yet published work: a BuildProfileRequest per user
  failed/<cohort>/<key>.pb       work that failed for a reason retrying cannot fix (also dead-lettered)

Every write is atomic (temporary file + rename), so a crash leaves either the old or the new file. A
pending file is removed only after its profile is stored and published, so accepted work survives a
crash and is resumed at the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from gravity.v1 import profile_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.catalog import Catalog
from gravity_core.proto_io import from_dict, to_json

ROOT = "profiler"


def user_key(user_id: str) -> str:
    """A file name for any user id: a readable prefix plus a hash (ids may hold any character)."""
    safe = "".join(c for c in user_id if c.isalnum() or c in "-_")[:40]
    return f"{safe}-{hashlib.sha256(user_id.encode('utf-8')).hexdigest()[:16]}"


@dataclass(frozen=True)
class PendingItem:
    path: Path
    cohort_id: str


class ProfilerStore:
    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts
        self.root = artifacts.path(ROOT)
        for sub in ("profiles", "pending", "failed"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def catalog(self) -> Catalog:
        return Catalog.at(self.root / "catalog.sqlite")

    # ------------------------------------------------------------- profiles
    def _profile_rel(self, user_id: str) -> str:
        return f"{ROOT}/profiles/{user_key(user_id)}.json"

    def save_profile(self, profile: profile_pb2.UserProfile) -> None:
        self.artifacts.write_bytes(self._profile_rel(profile.user_id), to_json(profile).encode("utf-8"))

    def load_profile(self, user_id: str) -> profile_pb2.UserProfile | None:
        import json

        path = self.artifacts.path(self._profile_rel(user_id))
        if not path.is_file():
            return None
        profile = from_dict(json.loads(path.read_text(encoding="utf-8")), profile_pb2.UserProfile)
        return profile if profile.user_id == user_id else None

    # --------------------------------------------------------------- queue
    def _pending_rel(self, cohort_id: str, user_id: str, kind: str = "pending") -> str:
        return f"{ROOT}/{kind}/{user_key(cohort_id)}/{user_key(user_id)}.pb"

    def enqueue(self, request: profile_pb2.BuildProfileRequest) -> None:
        self.artifacts.write_bytes(
            self._pending_rel(request.cohort_id, request.user_id),
            request.SerializeToString(deterministic=True),
        )

    def pending(self, limit: int | None = None) -> list[PendingItem]:
        """Queued work, oldest cohort first, then by user key."""
        base = self.root / "pending"
        cohorts = sorted((d for d in base.iterdir() if d.is_dir()), key=lambda d: (d.stat().st_mtime, d.name))
        out: list[PendingItem] = []
        for cohort in cohorts:
            for path in sorted(cohort.glob("*.pb")):
                out.append(PendingItem(path, cohort.name))
                if limit is not None and len(out) >= limit:
                    return out
        return out

    def load_pending(self, item: PendingItem) -> profile_pb2.BuildProfileRequest | None:
        """The queued request, or None when the file is gone or unreadable (the caller moves it aside)."""
        try:
            data = item.path.read_bytes()
        except FileNotFoundError:
            return None
        request = profile_pb2.BuildProfileRequest()
        try:
            request.ParseFromString(data)
        except DecodeError:
            return None
        return request

    def done(self, item: PendingItem) -> None:
        item.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the cohort is finished once its directory is empty
            item.path.parent.rmdir()

    def fail(self, item: PendingItem) -> Path:
        target = self.root / "failed" / item.path.parent.name / item.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.path.exists():
            os.replace(item.path, target)
        self.done(item)
        return target
