"""Run GRAVITY services as child processes (`gravity serve NAME`) and stop every one of them.

Used by `gravity demo`, `gravity up` and the fault tests. Each child gets its own process group and, on
Linux, is SIGTERMed by the kernel if the supervisor dies, so no service outlives its launcher.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from gravity_core.broker import free_port
from gravity_core.child_process import own_session_dying_with_parent
from gravity_core.config import GrpcSettings
from gravity_core.errors import Unavailable
from gravity_core.grpc.client import health_status, make_channel
from gravity_core.logging import get_logger

log = get_logger(__name__)


def gravity_command(*args: str, config: str | Path | None = None) -> list[str]:
    """``python -m gravity_core.cli.main [--config F] args...`` with this interpreter (no PATH lookup)."""
    cmd = [sys.executable, "-m", "gravity_core.cli.main"]
    if config is not None:
        cmd += ["--config", str(config)]
    return [*cmd, *args]


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(
    co_located: int, environ: Mapping[str, str] = os.environ, yielding: bool = False
) -> dict[str, str]:
    """Math-library threads for one of ``co_located`` processes computing at the same time on this machine.

    PyTorch starts one OpenMP thread per core in every process, and OpenMP threads spin while they wait: two
    processes computing at once on two cores with two threads each run several times slower than with one
    thread each (pairgen's README measures 10x). Each process gets ``cores // co_located`` threads (at least
    one); a value the user already set is kept.

    A ``yielding`` process instead takes every core but sleeps at its barriers (OMP_WAIT_POLICY=PASSIVE): for
    a long job beside a service that computes only part of the time. Measured on 2 cores (SmolLM2-135M,
    fwd+bwd of 8x300 tokens): alone 23.0 s/step with 2 passive threads against 36.9 with 1; beside a
    1-thread decoding process 35.9 against 39.6 — never slower than its share, 1.6x faster once alone."""
    if any(v in environ for v in THREAD_VARIABLES):
        return {}
    if yielding:
        return {**dict.fromkeys(THREAD_VARIABLES, str(os.cpu_count() or 1)), "OMP_WAIT_POLICY": "PASSIVE"}
    share = max(1, (os.cpu_count() or 1) // max(1, co_located))
    return dict.fromkeys(THREAD_VARIABLES, str(share))


@dataclass
class ServiceProcess:
    name: str
    command: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @classmethod
    def serve(
        cls,
        name: str,
        config_path: str | Path,
        log_dir: Path,
        grpc: GrpcSettings,
        co_located: int = 1,
        yielding: bool = False,
        replica: int = 1,
    ) -> ServiceProcess:
        """`gravity serve NAME --config FILE`, logging to ``log_dir/NAME.log``, health-checked at its gRPC target.

        ``co_located`` services share this machine's cores: each gets its share as its math-library thread
        count; a ``yielding`` one takes every core and yields them at its barriers (see ``thread_env``).
        ``replica`` 2, 3, ... is another process of the same service (``NAME-2``, logging to ``NAME-2.log``) on
        a free port of its own; replicas share the service's durable state (the profiler's queue)."""
        label, args, target = name, ["serve", name], grpc.target(name)
        if replica > 1:
            port = free_port()
            label, args = f"{name}-{replica}", [*args, "--port", str(port)]
            target = f"{target.rsplit(':', 1)[0]}:{port}"
        return cls(
            label,
            gravity_command(*args, config=config_path),
            log_dir / f"{label}.log",
            env=thread_env(co_located, yielding=yielding),
            target=target,
        )

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                list(self.command),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                preexec_fn=own_session_dying_with_parent,
            )
        self.starts += 1
        log.info("process_started", service=self.name, pid=self.proc.pid)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (SIGKILL simulates a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait(10)

    def stop(self, timeout_s: float = 20.0) -> None:
        self.terminate()
        self.wait_stopped(timeout_s)

    def terminate(self) -> None:
        """Ask the process to shut down (SIGTERM to its group); ``wait_stopped`` waits for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)

    def wait_stopped(self, timeout_s: float = 20.0) -> None:
        """Wait for a terminated process to exit; SIGKILL it when it has not after ``timeout_s``."""
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            log.warning("process_kill", service=self.name, reason="no exit after SIGTERM")
            self.kill(signal.SIGKILL)
        log.info("process_stopped", service=self.name, returncode=self.proc.returncode)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def serving(self, grpc_settings: GrpcSettings | None = None) -> bool:
        """One health check, now."""
        channel = make_channel(self.target, grpc_settings)
        try:
            return health_status(channel, timeout_s=1.0) == "SERVING"
        finally:
            channel.close()

    def wait_serving(self, timeout_s: float = 300.0, grpc_settings: GrpcSettings | None = None) -> None:
        """Wait until the health service answers SERVING; fail early (with the log tail) if the process died."""
        channel = make_channel(self.target, grpc_settings)
        deadline = time.monotonic() + timeout_s
        status = "UNREACHABLE"
        try:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise Unavailable(
                        f"{self.name} exited with {self.proc.returncode if self.proc else '?'}:\n{self.log_tail()}"
                    )
                status = health_status(channel)
                if status == "SERVING":
                    return
                time.sleep(0.3)
        finally:
            channel.close()
        raise Unavailable(
            f"{self.name} not SERVING after {timeout_s:.0f}s (last: {status}); log {self.log_path}:\n{self.log_tail()}"
        )


class Supervisor:
    """Owns a set of service processes; stopping it (or leaving its context) stops them all."""

    def __init__(self) -> None:
        self.processes: dict[str, ServiceProcess] = {}

    def add(self, process: ServiceProcess) -> ServiceProcess:
        self.processes[process.name] = process
        return process

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def __iter__(self) -> Iterator[ServiceProcess]:
        return iter(list(self.processes.values()))

    def stop_all(self, timeout_s: float = 20.0) -> None:
        """Terminate every process at once, then wait for each (services shut down in parallel: one after
        another took the demo 15 s)."""
        processes = list(reversed(list(self.processes.values())))
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + timeout_s
        for process in processes:
            process.wait_stopped(deadline - time.monotonic())

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
