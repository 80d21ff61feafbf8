"""`gravity demo` end to end on a reduced sample: embedded broker, five service processes, Kafka between
them, gRPC generation and judging, the report, and nothing left running afterwards."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from harness import processes_mentioning

from gravity_judge.methods import MAIN_METHODS, ORIGINAL
from gravity_stack.processes import gravity_command

pytestmark = [pytest.mark.broker, pytest.mark.model, pytest.mark.whole_stack, pytest.mark.timeout(2400)]

NINE_METHODS = {ORIGINAL, *MAIN_METHODS}  # the book's own description, seven baselines, GRAVITY


def test_demo_runs_end_to_end_and_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    command = gravity_command(
        "demo",
        "--out", str(out),
        "--users", "2",
        "--train-steps", "2",
        "--max-new-tokens", "40",
        "--judge-orders", "1",
        "--pref-align-books", "1",
        "--items-per-trait", "3",
        "--recovery-readers", "1",
    )  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=2300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"

    for name in ("report.json", "report.md", "report.html", "generations.jsonl", "config.toml"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    methods = set(report["sample"]["methods"])
    assert methods == NINE_METHODS, methods
    overall = report["metrics"]["overall"]
    for method in methods:
        assert 0.0 <= overall[method]["top1_win_rate"]["value"] <= 100.0
    # every (user, book) unit has exactly one top-ranked description
    assert sum(overall[m]["top1_win_rate"]["value"] for m in methods) == pytest.approx(100.0)
    generations = [
        json.loads(line) for line in (out / "generations.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert len(generations) == 2 * 9 and all(g["text"].strip() for g in generations)
    # the books described and judged are exactly the ones the cohort's manifest held out of training
    (manifest_path,) = (out / "artifacts" / "datasets").glob("*/manifest.json")
    held_out = json.loads(manifest_path.read_text(encoding="utf-8"))["held_out"]
    assert len(held_out) == 2 and {(g["user_id"], g["parent_asin"]) for g in generations} == {
        (user, books[0]) for user, books in held_out.items()
    }
    # the summary table names every method, and the report's path is printed
    assert all(overall[m]["display"] in proc.stdout for m in methods) and "report.html" in proc.stdout
    # the time table at the end, and estimates of the time left once a stage has finished
    stages = json.loads((out / "timing.json").read_text(encoding="utf-8"))["stages"]
    assert list(stages) == [
        "broker", "services", "ingest", "profiling", "pairs+training", "generation", "recovery", "judging"
    ]  # fmt: skip
    # the closing recovery line: a planted reader's profile scored against its truth, beside the baselines
    assert re.search(r"recovery on 1 planted readers \(.+\): stance macro-F1 \S+ \(majority", proc.stdout)
    assert (out / "fidelity" / "recovery.json").is_file()
    assert "where the time went:" in proc.stdout and all(f"\n{name} " in proc.stdout for name in stages)
    assert "left, estimated)" in proc.stdout
    # the generator and the judge start once the profiles are published: their loads would slow the profiler
    # two profiler processes share its queue, each building its share of the readers (one of the two here)
    by_replica = [
        _logged_at(out / "logs" / f"{name}.log", "profile_published") for name in ("profiler", "profiler-2")
    ]
    assert [len(times) for times in by_replica] == [1, 1], by_replica
    published = max(max(times) for times in by_replica)
    for name in ("generator", "judge"):
        assert min(_logged_at(out / "logs" / f"{name}.log", "grpc_started")) > published, name
    assert not processes_mentioning(str(out)), "processes outlived the demo"


def _logged_at(log: Path, event: str) -> list[datetime]:
    """When a service's JSON log recorded ``event`` (other lines, e.g. a model loader's progress bar, skipped)."""
    times = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            times.append(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")))
    assert times, f"{log.name} never logged {event}"
    return times
