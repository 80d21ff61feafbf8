"""One process imports the training stack once and forks a process for every run (a zygote).

Importing torch, transformers, PEFT and TRL takes about 25 s of one core on a 2-core machine (measured:
`import trl; trl.DPOTrainer` 29 s), and a fresh process per run pays it every time — a third of a demo-sized run,
and, for the runs queued behind the first, CPU taken from the run that is training. The zygote pays it once: it
imports, then waits on stdin for runs (one JSON line each: the run's ``gravity train`` arguments and its log
file), forks a child per run and reports the child's pid and, when it ends, its exit status on stdout; runs
forked while others still run train side by side (``[trainer] concurrent_runs``). A run
still gets a process of its own (memory back after every run; a crash never takes the service or the zygote
down). Forking is safe here because the zygote never computes: no OpenMP pool or other worker threads exist
to be lost in the child (PyTorch's DataLoader forks its workers the same way).

When the service closes the zygote's stdin it exits once its runs (which the service terminates first)
have ended; a zygote that died is replaced by a fresh one, and a run the zygote cannot take starts in a fresh
process as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from gravity_core.child_process import own_session_dying_with_parent

FORK_RUNS = "--fork-runs"


class ForkedRun:
    """A run forked by the zygote, with the part of ``subprocess.Popen`` the worker uses."""

    def __init__(self, pid: int, zygote: Zygote) -> None:
        self.pid = pid
        self._zygote = zygote

    def poll(self) -> int | None:
        return self._zygote.exit_status(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        status = self._zygote.wait_exit(self.pid, timeout)
        if status is None:
            raise subprocess.TimeoutExpired(f"training run {self.pid}", timeout or 0.0)
        return status


class Zygote:
    """The service's handle on the zygote process."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gravity_trainer.launch", FORK_RUNS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )
        self._changed = threading.Condition()
        # one request in flight at a time: the zygote answers requests in order, and the n-th pid is the n-th's
        self._requesting = threading.Lock()
        self._forked: list[int] = []
        self._exits: dict[int, int] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read_replies, name="trainer-zygote", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        with self._changed:
            return not self._closed and self.process.poll() is None

    def fork_run(self, argv: list[str], log_file: Path, timeout_s: float = 600.0) -> ForkedRun | None:
        """Start a run in a child of the zygote; None when the zygote is gone (start a fresh process instead).

        The timeout covers the zygote's imports when the first run arrives before they are done."""
        if self.process.stdin is None or not self.alive():
            return None
        request = json.dumps({"argv": argv, "log_file": str(log_file)}) + "\n"
        with self._requesting:
            with self._changed:
                before = len(self._forked)
            try:
                self.process.stdin.write(request.encode("utf-8"))
                self.process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return None
            with self._changed:
                self._changed.wait_for(lambda: len(self._forked) > before or self._closed, timeout_s)
                if len(self._forked) > before:
                    return ForkedRun(self._forked[before], self)
        return None

    def exit_status(self, pid: int) -> int | None:
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
            # a zygote that died took its run with it (the run dies with its parent, see _become_run)
            return -1 if self._closed else None

    def wait_exit(self, pid: int, timeout_s: float | None) -> int | None:
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or self._closed, timeout_s)
        return self.exit_status(pid)

    def close(self, timeout_s: float = 10.0) -> None:
        """Let the zygote go: it reads end-of-file and exits (after the run it is waiting for, if any)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)

    def _read_replies(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                reply = json.loads(line)
                pid = int(reply["pid"])
            except (ValueError, KeyError, TypeError):
                continue
            with self._changed:
                if "exit" in reply:
                    self._exits[pid] = int(reply["exit"])
                else:
                    self._forked.append(pid)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()


def serve_forks(run: Callable[[list[str]], None]) -> None:
    """In the zygote: import the training stack, then fork ``run(argv)`` for every request until end-of-file,
    without waiting for the runs already forked; exit once the last of them has ended."""
    # the replies get a descriptor of their own; whatever an import prints to stdout goes nowhere
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    preload()

    def reply(message: dict[str, int]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    running: set[int] = set()
    pending = b""
    reading = True
    while reading or running:
        # one thread, no signal handlers: poll stdin for requests and reap ended runs in turn
        if reading and select.select([0], [], [], 0.25)[0]:
            chunk = os.read(0, 65536)
            reading = bool(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in filter(bytes.strip, lines):
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    replies.close()
                    _become_run(run, [str(arg) for arg in request["argv"]], Path(request["log_file"]))
                running.add(pid)
                reply({"pid": pid})
        for pid in list(running):
            ended, status = os.waitpid(pid, os.WNOHANG)
            if ended:
                running.discard(pid)
                reply({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})
        if not reading and running:
            time.sleep(0.25)  # stdin is closed: only the runs are left to wait for


def _become_run(run: Callable[[list[str]], None], argv: list[str], log_file: Path) -> None:
    """In the forked child: a session of its own (the service stops it with its process group), output to the
    run's log, the zygote's pipes closed, death with the zygote; never returns."""
    code = 1
    try:
        own_session_dying_with_parent()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        log = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - the process ends with the run
        code = 0
        run(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def preload() -> None:
    """What every run imports first (transformers and PEFT load their model code lazily, on first access)."""
    import peft
    import transformers
    import trl

    for module, name in (
        (transformers, "AutoModelForCausalLM"),
        (transformers, "AutoTokenizer"),
        (peft, "LoraConfig"),
        (peft, "get_peft_model"),
        (trl, "DPOTrainer"),
        (trl, "SFTTrainer"),
    ):
        getattr(module, name)
    import gravity_trainer.run
    import gravity_trainer.trainers  # noqa: F401
