"""Durable run records for the trainer service: a queued or interrupted run survives a restart.

One JSON file per run under ``<work>/runs/``, written atomically on every state change. The run id is a
hash of what the run trains (manifest checksum, recipe, overrides, adapter id), so a replayed ShardRef or a
repeated Submit finds the existing run instead of training again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gravity.v1 import training_pb2
from gravity_core.files import write_json
from gravity_core.identifiers import check_segment
from gravity_core.logging import get_logger

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
log = get_logger(__name__)
TERMINAL = frozenset({SUCCEEDED, FAILED})
STATE_PROTO = {
    QUEUED: training_pb2.RUN_STATE_QUEUED,
    RUNNING: training_pb2.RUN_STATE_RUNNING,
    SUCCEEDED: training_pb2.RUN_STATE_SUCCEEDED,
    FAILED: training_pb2.RUN_STATE_FAILED,
}


def run_id_for(
    manifest_sha256: str, recipe: str, dataset: str, overrides: dict[str, Any], adapter_id: str
) -> str:
    key = json.dumps(
        {
            "manifest": manifest_sha256,
            "recipe": recipe,
            "dataset": dataset,
            "overrides": overrides,
            "adapter": adapter_id,
        },
        sort_keys=True,
    )
    return f"{recipe}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


@dataclass
class RunRecord:
    run_id: str
    pairs_dir: str
    dataset: str
    recipe: str
    manifest_sha256: str
    overrides: dict[str, Any] = field(default_factory=dict)
    adapter_id: str = ""
    source: str = "grpc"  # "kafka" (a complete dataset on gravity.shards.v1) or "grpc" (Submit)
    trigger: str = ""  # the ShardRef id or the Submit's dataset argument
    state: str = QUEUED
    message: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    adapter: dict[str, Any] = field(default_factory=dict)  # the published AdapterRef (JSON mapping)
    attempts: int = 0
    created_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    updated_at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL


class RunStore:
    """Thread-safe access to the run records; ``changed`` wakes Status streams and the worker."""

    def __init__(self, root: Path) -> None:
        self.root = root / "runs"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)

    def _path(self, run_id: str) -> Path:
        return self.root / f"{check_segment('run_id', run_id)}.json"

    def get(self, run_id: str) -> RunRecord | None:
        path = self._path(run_id)
        with self._lock:
            if not path.is_file():
                return None
            return RunRecord(**json.loads(path.read_text(encoding="utf-8")))

    def put(self, record: RunRecord) -> RunRecord:
        with self._lock:
            record.updated_at_ms = int(time.time() * 1000)
            write_json(self._path(record.run_id), asdict(record))
            self.changed.notify_all()
        return record

    def update(self, run_id: str, **changes: Any) -> RunRecord:
        with self._lock:
            record = self.get(run_id)
            if record is None:
                raise KeyError(run_id)
            for key, value in changes.items():
                setattr(record, key, value)
            return self.put(record)

    def all(self) -> list[RunRecord]:
        records = []
        with self._lock:
            for path in self.root.glob("*.json"):
                try:
                    records.append(RunRecord(**json.loads(path.read_text(encoding="utf-8"))))
                except (OSError, ValueError, TypeError) as exc:
                    log.error("run_record_unreadable", path=str(path), error=str(exc))
        return sorted(records, key=lambda r: (r.created_at_ms, r.run_id))

    def next_queued(self) -> RunRecord | None:
        queued = [r for r in self.all() if r.state == QUEUED]
        return queued[0] if queued else None

    def claim_next(self) -> RunRecord | None:
        """The oldest queued run, marked RUNNING in the same step, so that workers running side by side never
        take the same run."""
        with self._lock:
            record = self.next_queued()
            if record is None:
                return None
            return self.update(
                record.run_id,
                state=RUNNING,
                attempts=record.attempts + 1,
                message="starting",
                step=record.step,
            )

    def recover(self) -> list[RunRecord]:
        """After a restart, runs that were running go back to the queue (they resume from their checkpoint)."""
        recovered = []
        with self._lock:
            for record in self.all():
                if record.state == RUNNING:
                    record.state = QUEUED
                    record.message = "requeued after a restart; resumes from its last checkpoint"
                    recovered.append(self.put(record))
        return recovered
