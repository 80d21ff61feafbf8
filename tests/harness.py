"""Cross-package test harness: services as real `gravity serve NAME` processes on one config file.

A :class:`Stack` writes the demo's configuration (embedded models, one broker, small knobs) with per-test
overrides, starts the services the test names as child processes, and stops every one of them at the end,
whatever the test did to them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from gravity_core.broker import free_port
from gravity_core.config import Settings, load_settings
from gravity_core.grpc.client import health_status, make_channel
from gravity_core.registry import service_names
from gravity_core.sample import sample_dir
from gravity_stack import tomlwrite
from gravity_stack.demo import DemoOptions, demo_config
from gravity_stack.processes import ServiceProcess, Supervisor


@dataclass
class Stack:
    out: Path
    bootstrap: str
    overrides: dict[str, Any] = field(default_factory=dict)
    supervisor: Supervisor = field(default_factory=Supervisor)
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in service_names()})
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        # No response cache: a test must make the model calls it means to, not replay an earlier run's.
        options = DemoOptions(out=self.out, extra={"cache.enabled": False, **self.overrides})
        config = demo_config(options, self.bootstrap, self.ports, sample_dir() / "meta_Books.jsonl")
        self.config_path = self.out / "config.toml"
        self.config_path.write_text(tomlwrite.dumps(config), encoding="utf-8")
        self.settings: Settings = load_settings(self.config_path, env={})

    def start(self, name: str) -> ServiceProcess:
        process = self.supervisor.processes.get(name) or self.supervisor.add(
            ServiceProcess.serve(name, self.config_path, self.out / "logs", self.settings.grpc)
        )
        return process.start()

    def start_replica(self, name: str, replica: int) -> ServiceProcess:
        """Another process of service ``name`` (its own gRPC port and log) on the same configuration."""
        key = f"{name}-{replica}"
        process = self.supervisor.processes.get(key)
        if process is None:
            port = free_port()
            base = ServiceProcess.serve(name, self.config_path, self.out / "logs", self.settings.grpc)
            process = ServiceProcess(
                key,
                base.command,
                self.out / "logs" / f"{key}.log",
                env={f"GRAVITY_GRPC__PORTS__{name.upper()}": str(port)},
                target=f"127.0.0.1:{port}",
            )
            self.supervisor.add(process)
        return process.start()

    def channel(self, name: str) -> grpc.Channel:
        if name not in self._channels:
            self._channels[name] = make_channel(self.settings.grpc.target(name), self.settings.grpc)
        return self._channels[name]

    def health(self, name: str) -> str:
        return health_status(self.channel(name))

    def wait_health(self, name: str, wanted: str, timeout_s: float = 300.0) -> None:
        """Poll ``name``'s health until it reports ``wanted``; fail with the log tail if it never does."""
        process = self.supervisor.processes.get(name)  # None when something else (gravity up) runs it
        deadline = time.monotonic() + timeout_s
        status = "UNREACHABLE"
        while time.monotonic() < deadline:
            if process is not None:
                assert process.alive(), f"{name} exited:\n{process.log_tail(40)}"
            status = self.health(name)
            if status == wanted:
                return
            time.sleep(0.3)
        tail = process.log_tail(40) if process else ""
        raise AssertionError(f"{name} still {status} after {timeout_s:.0f}s:\n{tail}")

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self.supervisor.stop_all()


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (services carry their config file's path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found
