"""`gravity up`: run the five services against external Kafka, vLLM and OpenAI endpoints.

The local shape of the Kubernetes deployment: one process per service with the same configuration file,
supervised (a crashed service is restarted with backoff, like a kubelet would) until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from gravity_core.config import Settings, check_settings
from gravity_core.grpc.client import health_status, make_channel
from gravity_core.logging import get_logger
from gravity_stack.processes import ServiceProcess, Supervisor

log = get_logger(__name__)


def run_up(
    settings: Settings, config_path: str, services: list[str], log_dir: Path, echo: Callable[[str], None]
) -> None:
    check_settings(settings)  # a typo in any section fails here, before anything starts
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Supervisor() as supervisor:
        for name in services:
            supervisor.add(
                ServiceProcess.serve(name, config_path, log_dir, settings.grpc, co_located=len(services))
            ).start()
        echo(f"started {', '.join(services)}; logs in {log_dir}; Ctrl-C to stop")
        backoff = dict.fromkeys(services, 1.0)
        last_status: dict[str, str] = {}
        try:
            while not stop.is_set():
                for process in supervisor:
                    if not process.alive():
                        code = process.proc.returncode if process.proc else None
                        echo(f"{process.name} exited ({code}); restarting in {backoff[process.name]:.0f}s")
                        stop.wait(backoff[process.name])
                        backoff[process.name] = min(backoff[process.name] * 2, 60.0)
                        process.start()
                        continue
                    channel = make_channel(process.target, settings.grpc)
                    status = health_status(channel)
                    channel.close()
                    if status != last_status.get(process.name):
                        echo(f"{process.name:<10} {process.target:<22} {status}")
                        last_status[process.name] = status
                    if status == "SERVING":
                        backoff[process.name] = 1.0
                stop.wait(2.0)
        except KeyboardInterrupt:
            pass
        echo("stopping services")
