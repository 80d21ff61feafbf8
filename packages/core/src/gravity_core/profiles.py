"""A local store of the latest UserProfile per user: from profiles.jsonl, or following gravity.profiles.v1.

The generator and the judge each keep one so they can answer by user id. Updates are idempotent: a
profile replaces the stored one only when it is at least as new (``built_at_ms``), so replays and
duplicates are harmless.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from gravity.v1 import profile_pb2
from gravity_core.bus import Bus, ConsumerLoop
from gravity_core.errors import NotFound
from gravity_core.proto_io import read_jsonl
from gravity_core.skips import SkipLog


class ProfileStore:
    def __init__(self) -> None:
        self._profiles: dict[str, profile_pb2.UserProfile] = {}
        self._lock = threading.Lock()
        self.updates = 0

    @classmethod
    def from_jsonl(cls, path: str | Path, skips: SkipLog | None = None) -> ProfileStore:
        store = cls()
        skips = skips if skips is not None else SkipLog()
        for number, profile in read_jsonl(path, profile_pb2.UserProfile, skips):
            if not profile.user_id:
                skips.add("missing_field", "profile has no user_id", str(path), number)
                continue
            store.put(profile)
        return store

    def put(self, profile: profile_pb2.UserProfile) -> bool:
        """Store ``profile`` unless a newer one is already stored; True when stored."""
        with self._lock:
            current = self._profiles.get(profile.user_id)
            if current is not None and current.built_at_ms > profile.built_at_ms:
                return False
            self._profiles[profile.user_id] = profile
            self.updates += 1
            return True

    def get(self, user_id: str) -> profile_pb2.UserProfile:
        with self._lock:
            profile = self._profiles.get(user_id)
        if profile is None:
            raise NotFound("user_id", f"no profile for user {user_id!r}")
        return profile

    def __contains__(self, user_id: object) -> bool:
        with self._lock:
            return user_id in self._profiles

    def __len__(self) -> int:
        with self._lock:
            return len(self._profiles)

    def __iter__(self) -> Iterator[profile_pb2.UserProfile]:
        with self._lock:
            return iter(list(self._profiles.values()))

    def follow(self, bus: Bus) -> ConsumerLoop[profile_pb2.UserProfile]:
        """Start replaying gravity.profiles.v1 (compacted) into this store: the whole topic on every start, in
        no consumer group, so every replica sees every profile and restarts leave no groups behind."""
        return ConsumerLoop(
            bus,
            bus.topics.profiles,
            None,
            profile_pb2.UserProfile,
            lambda p, _r: self.put(p),
            "follow-profiles",
        ).start()
