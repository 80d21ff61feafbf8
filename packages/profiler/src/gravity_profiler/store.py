"""The service's durable state in the artifact store (a local dir, or a volume in Kubernetes).

profiler/
  catalog.sqlite                 item metadata received over IngestRecords (kept across restarts)
  profiles/<key>.json            the latest profile of each user (protobuf JSON), replaced on rebuild
  pending/<cohort>/<key>.pb      accepted, not yet published work: a BuildProfileRequest per user
  staging/<owner>/<cohort>/      an ingest's requests while they are written, renamed into pending/ at once
  claimed/<owner>/<cohort>/<key>.pb   work a live worker took (several processes may share this store)
  claimed/<owner>.lock           held by that worker's process while it lives
  failed/<cohort>/<key>.pb       work that failed for a reason retrying cannot fix (also dead-lettered)

Every write is atomic (temporary file + rename), so a crash leaves either the old or the new file. A
worker claims an item by renaming it out of pending/ (atomic: of two replicas sharing the volume exactly one
wins); a claimed file is removed only after its profile is stored and published, so accepted work survives a
crash: the claims of a process whose lock is free again go back to pending/ at the next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from google.protobuf.message import DecodeError

from gravity.v1 import profile_pb2
from gravity_core import files
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
        for sub in ("profiles", "pending", "claimed", "failed"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._owner_lock: Any = None

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

    def enqueue_cohort(
        self, owner: str, cohort_id: str, requests: Iterable[profile_pb2.BuildProfileRequest]
    ) -> int:
        """Queue an ingest's requests so that other workers see all of them or none: they are written under
        staging/ and the cohort's directory is renamed into pending/ in one step. A replica polling the queue
        mid-ingest would otherwise claim the first few alone and split the cohort's batch. Returns how many."""
        stage = self.root / "staging" / owner / user_key(cohort_id)
        shutil.rmtree(stage, ignore_errors=True)
        count = 0
        for request in requests:
            files.write_bytes(
                stage / f"{user_key(request.user_id)}.pb", request.SerializeToString(deterministic=True)
            )
            count += 1
        if not count:
            return 0
        target = self.root / "pending" / user_key(cohort_id)
        try:
            os.rename(stage, target)  # atomic; refused when the cohort already has queued work
        except OSError:
            for path in sorted(stage.glob("*.pb")):
                self._move_into(path, target)
            with contextlib.suppress(OSError):
                stage.rmdir()
        files.fsync_dir(target.parent)
        with contextlib.suppress(OSError):
            stage.parent.rmdir()
        return count

    @staticmethod
    def _move_into(path: Path, directory: Path) -> None:
        # a worker removes a cohort's directory once it claimed the last item: make it again and retry
        for _ in range(5):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, directory / path.name)
                return
            except FileNotFoundError:
                continue
        os.replace(path, directory / path.name)

    def enqueue(self, request: profile_pb2.BuildProfileRequest) -> None:
        self.artifacts.write_bytes(
            self._pending_rel(request.cohort_id, request.user_id),
            request.SerializeToString(deterministic=True),
        )

    def pending(self, limit: int | None = None) -> list[PendingItem]:
        """Queued work, oldest cohort first, then by user key."""
        out: list[PendingItem] = []
        for cohort in _subdirectories_oldest_first(self.root / "pending"):
            for path in _queued_files(cohort):
                out.append(PendingItem(path, cohort.name))
                if limit is not None and len(out) >= limit:
                    return out
        return out

    def open_claims(self, owner: str) -> None:
        """Start claiming work as ``owner`` (unique per process): hold its lock for the life of the process."""
        self._owner_lock = FileLock(str(self.root / "claimed" / f"{owner}.lock"))
        self._owner_lock.acquire(timeout=0)

    def claim(self, owner: str, limit: int | None = None) -> list[PendingItem]:
        """Up to ``limit`` items for ``owner``: what it already holds (work a transient failure interrupted)
        first, then queued items it takes now; an item another worker took first is skipped."""
        mine = self.root / "claimed" / owner
        out = [PendingItem(p, p.parent.name) for p in sorted(mine.glob("*/*.pb"))][:limit]
        if limit is not None and len(out) >= limit:
            return out
        for item in self.pending():
            target = self.root / "claimed" / owner / item.path.parent.name / item.path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(item.path, target)
            except FileNotFoundError:
                continue  # another worker claimed it
            with contextlib.suppress(OSError):
                item.path.parent.rmdir()
            out.append(PendingItem(target, item.cohort_id))
            if limit is not None and len(out) >= limit:
                break
        return out

    def release_orphans(self) -> int:
        """Put the claims of workers that are gone (their lock is free) back in the queue, and drop the ingests
        they were staging (never answered, so their clients retry); returns how many claims went back."""
        for owner_dir in _subdirectories_oldest_first(self.root / "staging"):
            with self._owner_gone(owner_dir.name) as gone:
                if gone:
                    shutil.rmtree(owner_dir, ignore_errors=True)
        released = 0
        for owner_dir in _subdirectories_oldest_first(self.root / "claimed"):
            with self._owner_gone(owner_dir.name) as gone:
                if not gone:
                    continue
                for path in sorted(owner_dir.glob("*/*.pb")):
                    self._move_into(path, self.root / "pending" / path.parent.name)
                    released += 1
                for cohort in _subdirectories_oldest_first(owner_dir):
                    with contextlib.suppress(OSError):
                        cohort.rmdir()
                with contextlib.suppress(OSError):
                    owner_dir.rmdir()
        return released

    @contextlib.contextmanager
    def _owner_gone(self, owner: str) -> Iterator[bool]:
        """Whether ``owner``'s process is gone: its lock is free, and held here meanwhile. After, the lock file
        goes too once nothing of the owner's is left under claimed/."""
        lock_path = self.root / "claimed" / f"{owner}.lock"
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False  # alive
            return
        try:
            yield True
        finally:
            lock.release()
            if not (self.root / "claimed" / owner).exists():
                with contextlib.suppress(OSError):
                    lock_path.unlink()

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


# Other replicas create and remove queue directories (a worker that claims a cohort's last item removes the
# cohort) while this one lists them: what is gone by the time it is read is simply not listed.


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as listing:
            return list(listing)
    except FileNotFoundError:
        return []


def _subdirectories_oldest_first(directory: Path) -> list[Path]:
    found: list[tuple[float, str, Path]] = []
    for entry in _entries(directory):
        try:
            if entry.is_dir(follow_symlinks=False):
                found.append((entry.stat(follow_symlinks=False).st_mtime, entry.name, Path(entry.path)))
        except FileNotFoundError:
            continue
    return [path for _, _, path in sorted(found)]


def _queued_files(cohort: Path) -> list[Path]:
    return sorted(Path(e.path) for e in _entries(cohort) if e.name.endswith(".pb"))
