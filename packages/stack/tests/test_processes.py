"""The supervisor stops its service processes (real processes, real signals)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gravity_stack.processes import ServiceProcess, Supervisor

# On SIGTERM: note it, take a while to shut down (as a service closing its consumers does), note the exit.
SLOW_TO_STOP = """
import os, signal, sys, time
journal, name = sys.argv[1], sys.argv[2]
def note(line):
    with open(journal, "a") as f:
        f.write(line + "\\n")
def on_term(signum, frame):
    note("term " + name)
    time.sleep(1.0)
    note("exit " + name)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
note("ready " + name)
while True:
    time.sleep(0.05)
"""


def test_stopping_the_supervisor_terminates_every_process_before_waiting_for_any(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    names = ["a", "b", "c"]
    with Supervisor() as supervisor:
        for name in names:
            supervisor.add(
                ServiceProcess(
                    name, [sys.executable, "-c", SLOW_TO_STOP, str(journal), name], tmp_path / name
                )
            ).start()
        deadline = time.monotonic() + 60
        while not (journal.exists() and journal.read_text().count("ready") == len(names)):
            assert time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.05)
    lines = journal.read_text().split("\n")[len(names) : -1]
    terms = [i for i, line in enumerate(lines) if line.startswith("term")]
    exits = [i for i, line in enumerate(lines) if line.startswith("exit")]
    assert len(terms) == len(exits) == len(names), lines
    assert max(terms) < min(exits), lines  # shut down side by side, not one after another
    assert all(not p.alive() and p.proc is not None and p.proc.returncode == 0 for p in supervisor)


def test_a_replica_runs_the_same_service_on_a_port_and_log_of_its_own(tmp_path: Path) -> None:
    from gravity_core.config import GrpcSettings

    grpc = GrpcSettings(host="127.0.0.1", ports={"profiler": 50100})
    first = ServiceProcess.serve("profiler", tmp_path / "config.toml", tmp_path, grpc, co_located=2)
    second = ServiceProcess.serve(
        "profiler", tmp_path / "config.toml", tmp_path, grpc, co_located=2, replica=2
    )
    assert (first.name, first.target, first.log_path.name) == ("profiler", "127.0.0.1:50100", "profiler.log")
    assert second.name == "profiler-2" and second.log_path.name == "profiler-2.log"
    port = int(second.target.rsplit(":", 1)[1])
    assert port != 50100 and list(second.command[-4:]) == ["serve", "profiler", "--port", str(port)]
    assert first.env.get("OMP_NUM_THREADS") == second.env.get(
        "OMP_NUM_THREADS"
    )  # each its share of the cores
