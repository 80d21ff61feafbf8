"""`gravity bench fidelity` end to end at the smallest size: plant, profile, train, judge, and the one table
(slow: it runs every step with the real models; each step also has a small default-suite test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gravity_core import names

pytestmark = [pytest.mark.slow, pytest.mark.model]


def test_the_bench_runs_every_step_and_prints_one_table(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITY_") or k == "GRAVITY_HOME"}
    env.update({"GRAVITY_CACHE__ENABLED": "false", "GRAVITY_LOGGING__LEVEL": "WARNING"})
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", "bench", "fidelity", "--readers", "2", "--steps", "1",
         "--batch-size", "2", "--eval-pairs", "1", "--books-per-reader", "1", "--max-new-tokens", "16",
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout[result.stdout.index("gravity bench fidelity") :]
    for row in (
        "stance macro-F1, expressed statements",
        "trait accuracy, expressed traits",
        "genre precision / recall",
        "held-out preference accuracy, personality",
        "persona-swap rate",
    ):
        assert row in table, row
    report = json.loads((out / "fidelity.json").read_text())
    assert {"plant", "recovery", "learning", "swap", "timings_s"} <= set(report)
    assert report["plant"]["readers"] == 2
    assert report["learning"]["training"][names.GRAVITY]["steps"] == 1
    assert report["swap"][0]["units"] == 2
    assert (out / "fidelity.md").read_text().startswith("# GRAVITY fidelity report")
