"""A run SIGKILLed after its first checkpoint resumes from it when started again with the same --out."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gravity_core.adapters import is_adapter_dir, read_adapter_ref
from gravity_core.cli.main import cli
from gravity_trainer.preflight import WORK_DIR

pytestmark = pytest.mark.model


def test_killed_run_resumes_from_its_last_checkpoint(make_pairs: Callable[..., Path], tmp_path: Path) -> None:
    pairs = make_pairs({"gravity": 8})
    out = tmp_path / "adapter"
    args = [
        "--pairs", str(pairs), "--recipe", "gravity-dpo", "--out", str(out), "--max-steps", "2",
        "--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=1",
        "--set", "max_eval_rows=1", "--set", "eval_steps=1", "--set", "early_stopping=false",
    ]  # fmt: skip
    log = tmp_path / "first-run.log"
    with open(log, "wb") as sink:
        child = subprocess.Popen(
            [sys.executable, "-m", "gravity_trainer.launch", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while not list((out / WORK_DIR).glob("checkpoint-*/trainer_state.json")):
            assert child.poll() is None, f"the run ended before its first checkpoint:\n{log.read_text()}"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.1)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    assert not is_adapter_dir(out)
    done = [
        int(p.parent.name.split("-")[1]) for p in (out / WORK_DIR).glob("checkpoint-*/trainer_state.json")
    ]
    killed_at = max(done)
    assert killed_at == 1

    result = CliRunner().invoke(cli, ["train", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"resuming from checkpoint-{killed_at} (step {killed_at})" in result.output
    steps = [int(s) for s in re.findall(r"^step (\d+)/2", result.output, re.MULTILINE)]
    assert steps and steps[0] == killed_at + 1 and steps[-1] == 2  # the global step continued
    ref = read_adapter_ref(out)
    assert ref.steps == 2
    record = json.loads((out / "training_run.json").read_text())
    assert record["resumed_from_step"] == killed_at
    # the step logs of both processes make up one history
    assert [int(e["step"]) for e in record["train_log"]] == [1, 2]
    assert not (out / WORK_DIR).exists()
