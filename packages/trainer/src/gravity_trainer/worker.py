"""The service's run executor: queued training runs, ``[trainer] concurrent_runs`` at a time (default one),
each in its own process.

A child process (``python -m gravity_trainer.launch`` or the configured launcher, e.g. accelerate) keeps the
service responsive and gives the memory back after every run; a crash of the run never takes the service
down. The child writes progress events to a JSON Lines file that the worker tails into the run record. On
success the adapter is copied into the artifact store and its AdapterRef published; on failure the run is
marked FAILED with the reason and a dead letter is published; either way the worker moves on.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gravity.v1 import training_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.bus import Bus, dead_letter
from gravity_core.errors import GravityError, Unavailable
from gravity_core.logging import get_logger
from gravity_core.metrics import TRAINING_STEPS
from gravity_core.proto_io import to_dict
from gravity_trainer.progress import ProgressEvent
from gravity_trainer.publishing import publish_ref, store_adapter
from gravity_trainer.runs import FAILED, QUEUED, RUNNING, SUCCEEDED, RunRecord, RunStore
from gravity_trainer.settings import TrainerSettings
from gravity_trainer.warm import ForkedRun, Zygote

log = get_logger(__name__)

# A run's process: a child of the service, or of the zygote (the part of Popen both offer)
RunProcess = subprocess.Popen[bytes] | ForkedRun


class RunWorker:
    def __init__(
        self,
        runs: RunStore,
        store: ArtifactStore,
        bus: Bus | None,
        section: TrainerSettings,
        base_model: str,
        work_root: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.runs = runs
        self.store = store
        self.bus = bus
        self.section = section
        self.base_model = base_model
        self.work_root = work_root
        self.env = env
        self._stop = threading.Event()
        self._stop_timeout_s = 20.0  # how long a stopping run gets after SIGTERM before SIGKILL
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._children: dict[str, RunProcess] = {}  # run id -> its process, while it runs
        self._child_lock = threading.Lock()
        self._zygote: Zygote | None = None
        # pid of the last run's process and whether the zygote forked it (tests, logs)
        self.last_child: tuple[int, bool] | None = None

    def running(self) -> dict[str, int]:
        """The runs whose process is alive now: run id -> pid."""
        with self._child_lock:
            children = dict(self._children)
        return {run_id: child.pid for run_id, child in children.items() if child.poll() is None}

    # ------------------------------------------------------------ lifecycle
    def start(self, warm_now: bool = False) -> RunWorker:
        """``warm_now``: start the zygote's imports now rather than with the first run."""
        if warm_now:
            self._warm_zygote()
        for slot in range(self.section.concurrent_runs):
            thread = threading.Thread(target=self._loop, name=f"trainer-worker-{slot}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the running runs' processes (their records stay RUNNING, so the next start resumes them).

        Each slot stops its own run, so runs stop in parallel, and a run whose process was starting at this
        moment is stopped as well."""
        self._stop_timeout_s = timeout_s
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout_s + 10.0)  # SIGTERM, up to timeout_s, then SIGKILL and its 5 s wait
        with self._child_lock:
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()

    # ---------------------------------------------------------------- loop
    def _loop(self) -> None:
        while not self._stop.is_set():
            # claimed and marked RUNNING in one step: the other slots never take the same run
            record = self.runs.claim_next()
            if record is None:
                self._wake.wait(2.0)
                self._wake.clear()
                continue
            try:
                self._execute(record)
            except Exception as exc:  # the worker must outlive any run
                log.exception("run_crashed", run=record.run_id)
                self._fail(record.run_id, f"{type(exc).__name__}: {exc}")

    def run_dir(self, run_id: str) -> Path:
        return self.work_root / "work" / run_id

    def _execute(self, record: RunRecord) -> None:
        run_dir = self.run_dir(record.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        out = run_dir / "adapter"
        progress_file = run_dir / "progress.jsonl"
        progress_file.unlink(missing_ok=True)
        log.info("run_started", run=record.run_id, recipe=record.recipe, dataset=record.dataset)
        code, error = self._run_child(record, out, progress_file, run_dir / "train.log")
        if self._stop.is_set():
            return  # stopped by the service: the record stays RUNNING and resumes on the next start
        if code != 0:
            self._fail(record.run_id, error or f"training exited with status {code}")
            return
        try:
            stored = store_adapter(self.store, out)
        except GravityError as exc:
            self._fail(record.run_id, f"storing the adapter failed: {exc}")
            return
        self._publish(stored)
        if self._stop.is_set():
            return
        self.runs.update(
            record.run_id,
            state=SUCCEEDED,
            message=f"adapter {stored.adapter_id} stored at {stored.uri}",
            step=int(stored.steps),
            adapter=to_dict(stored),
            metrics=dict(stored.metrics),
        )
        log.info("run_succeeded", run=record.run_id, adapter=stored.adapter_id)
        if not self.section.keep_work_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _publish(self, ref: training_pb2.AdapterRef) -> None:
        """Retry until Kafka takes it: the adapter is safe in the store, only the announcement is pending."""
        if self.bus is None:
            return
        delay = 1.0
        while not self._stop.is_set():
            try:
                publish_ref(self.bus, ref)
                return
            except Unavailable as exc:
                log.warning("adapter_publish_retry", adapter=ref.adapter_id, error=str(exc))
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)

    def _fail(self, run_id: str, reason: str) -> None:
        record = self.runs.update(run_id, state=FAILED, message=reason)
        log.error("run_failed", run=run_id, reason=reason)
        if self.bus is not None:
            self.bus.publish_dead_letter(
                dead_letter(
                    "trainer",
                    "training_failed",
                    f"run {run_id} ({record.recipe} on {record.dataset}, {record.trigger}): {reason}",
                    source_file=record.pairs_dir,
                    key=run_id.encode(),
                ),
                required=False,  # the run's FAILED record with the reason is durable in the run store
            )

    # ---------------------------------------------------------------- child
    def command(self, record: RunRecord, out: Path, progress_file: Path) -> list[str]:
        prefix = list(self.section.launcher) or [sys.executable, "-m", "gravity_trainer.launch"]
        return [*prefix, *self.run_arguments(record, out, progress_file)]

    def run_arguments(self, record: RunRecord, out: Path, progress_file: Path) -> list[str]:
        """The run's ``gravity train`` options, whichever process runs them (a fresh one or a fork of the zygote)."""
        cmd = [
            "--pairs",
            record.pairs_dir,
            "--dataset",
            record.dataset,
            "--recipe",
            record.recipe,
            "--out",
            str(out),
            "--base-model",
            self.base_model,
            "--manifest-sha256",
            record.manifest_sha256,
            "--progress-file",
            str(progress_file),
            "--no-publish",
        ]
        if record.adapter_id:
            cmd += ["--adapter-id", record.adapter_id]
        if self.section.recipe_config:
            cmd += ["--recipe-config", self.section.recipe_config]
        if self.section.allow_base_mismatch:
            cmd.append("--allow-base-mismatch")
        for key, value in sorted(record.overrides.items()):
            cmd += ["--set", f"{key}={_literal(value)}"]
        return cmd

    def _environment(self) -> dict[str, str]:
        env = dict(self.env if self.env is not None else os.environ)
        if self.section.concurrent_runs > 1:
            # runs side by side share the cores: OpenMP threads that spin while they wait would take them from
            # the other run (the zygote's runs inherit its environment, so it gets this too)
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        return env

    def _warm_zygote(self) -> Zygote | None:
        """The zygote runs are forked from (default launcher, ``warm_start``), started on first use and replaced
        when it died; None without one."""
        if self.section.launcher or not self.section.warm_start or self._stop.is_set():
            return None
        with self._child_lock:
            if self._zygote is None or not self._zygote.alive():
                if self._zygote is not None:
                    log.warning("trainer_zygote_replaced", pid=self._zygote.pid)
                    self._zygote.close(timeout_s=1.0)
                self._zygote = Zygote(self._environment())
            return self._zygote

    def _start_child(self, record: RunRecord, out: Path, progress_file: Path, log_file: Path) -> RunProcess:
        zygote = self._warm_zygote()
        forked = zygote.fork_run(self.run_arguments(record, out, progress_file), log_file) if zygote else None
        if forked is not None:
            self.last_child = (forked.pid, True)
            return forked
        with open(log_file, "ab") as log_out:
            child = subprocess.Popen(
                self.command(record, out, progress_file),
                stdout=log_out,
                stderr=subprocess.STDOUT,
                env=self._environment(),
                start_new_session=True,
            )
        self.last_child = (child.pid, False)
        return child

    def _run_child(
        self, record: RunRecord, out: Path, progress_file: Path, log_file: Path
    ) -> tuple[int, str]:
        child = self._start_child(record, out, progress_file, log_file)
        with self._child_lock:
            self._children[record.run_id] = child
        tail = _Tail(progress_file, lambda e: self._on_progress(record.run_id, e))
        while child.poll() is None:
            if self._stop.wait(0.5):
                if child.poll() is None:
                    _terminate(child, self._stop_timeout_s)
                break
            tail.poll()
        tail.poll()
        with self._child_lock:
            self._children.pop(record.run_id, None)
        code = child.poll()
        return (code if code is not None else -1), _last_error(log_file)

    def _on_progress(self, run_id: str, event: ProgressEvent) -> None:
        changes: dict[str, Any] = {"message": event.line()}
        if event.kind in ("log", "eval"):
            changes.update(step=event.step, total_steps=event.total_steps, epoch=event.epoch)
            record = self.runs.get(run_id)
            if record is not None:
                changes["metrics"] = {**record.metrics, **event.metrics}
                TRAINING_STEPS.labels(record.recipe).set(event.step)
        self.runs.update(run_id, **changes)


class _Tail:
    """Reads the JSON Lines progress file incrementally."""

    def __init__(self, path: Path, on_event: Callable[[ProgressEvent], None]) -> None:
        self.path = path
        self.on_event = on_event
        self.offset = 0
        self.partial = ""

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8") as f:
            f.seek(self.offset)
            chunk = f.read()
            self.offset = f.tell()
        lines = (self.partial + chunk).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if line.strip():
                try:
                    self.on_event(ProgressEvent.from_json(line))
                except (ValueError, TypeError) as exc:
                    log.warning("progress_line_unreadable", path=str(self.path), error=str(exc))


def _literal(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def _last_error(log_file: Path) -> str:
    """The child's one-line error ("error: ..."), else the last non-empty line of its output."""
    try:
        lines = [
            ln.strip()
            for ln in log_file.read_text(encoding="utf-8", errors="replace").splitlines()
            if ln.strip()
        ]
    except OSError:
        return ""
    for line in reversed(lines):
        if line.startswith(("error:", "internal error:")):
            return line
    return lines[-1][:500] if lines else ""


def _terminate(child: RunProcess, timeout_s: float) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(5)


__all__ = ["FAILED", "QUEUED", "RUNNING", "SUCCEEDED", "RunWorker"]
