"""`gravity demo` end to end on a reduced sample: embedded broker, five service processes, Kafka between
them, gRPC generation and judging, the report, and nothing left running afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from harness import processes_mentioning

from gravity_core.demo.processes import gravity_command

pytestmark = [pytest.mark.broker, pytest.mark.model, pytest.mark.timeout(2400)]

NINE_METHODS = {
    "original",
    "base-rewrite",
    "demo-based",
    "user-summary",
    "lamp",
    "tri-agent",
    "user-sft",
    "pref-align",
    "gravity",
}


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
    )  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=2300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"

    for name in ("report.json", "report.md", "report.html", "generations.jsonl", "config.toml"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    methods = set(report["sample"]["methods"])
    # the book's own description, the paper's seven baselines and GRAVITY
    assert methods == NINE_METHODS, methods
    overall = report["metrics"]["overall"]
    for method in methods:
        rate = overall[method]["top1_win_rate"]["value"]
        assert 0.0 <= rate <= 1.0
    assert abs(sum(overall[m]["top1_win_rate"]["value"] for m in methods) - 1.0) < 1e-6
    generations = (out / "generations.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(generations) == 2 * 9
    assert "report.json" in proc.stdout and "gravity" in proc.stdout  # the summary table and the path
    assert not processes_mentioning(str(out)), "processes outlived the demo"
