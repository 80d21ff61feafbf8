"""The commands as a user runs them (`gravity fidelity plant`, bad input answered in one line with exit status
2, never a traceback) and the report composed from whatever sections a run wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gravity_core import names
from gravity_fidelity.report import REPORT_JSON, REPORT_MD, markdown, table_rows, write_report, write_section
from gravity_fidelity.truth import read_truths


def _gravity(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITY_") or k == "GRAVITY_HOME"}
    env.update({"GRAVITY_CACHE__ENABLED": "false", "GRAVITY_LOGGING__LEVEL": "WARNING"})
    return subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_plant_writes_the_readers_and_prints_a_summary(tmp_path: Path) -> None:
    result = _gravity("fidelity", "plant", "--readers", "2", "--seed", "21", "--out", str(tmp_path / "p"))
    assert result.returncode == 0, result.stderr
    assert "gravity fidelity plant" in result.stdout and "statements expressed" in result.stdout
    assert len(read_truths(tmp_path / "p")) == 2


def test_bad_input_is_one_line_and_exit_status_two(tmp_path: Path) -> None:
    result = _gravity("fidelity", "plant", "--readers", "0", "--out", str(tmp_path / "p"))
    assert result.returncode == 2 and "--readers" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "empty").mkdir()
    for command in ("profile", "train", "judge"):
        result = _gravity("fidelity", command, "--truth", str(tmp_path / "empty"))
        assert result.returncode == 2, (command, result.stderr)
        assert "truth.jsonl" in result.stderr and "gravity fidelity plant" in result.stderr
        assert "Traceback" not in result.stderr


def _recovery() -> dict:
    def comparison(value: float) -> dict:
        score = {"n": 10, "accuracy": value, "macro_f1": value, "invalid": 0}
        return {**score, "majority": {**score, "macro_f1": 0.2}, "majority_label": "support", "random": score}

    return {
        "model": "embedded:m",
        "readers": 2,
        "missing_profiles": [],
        "stances_expressed": comparison(0.6),
        "stances_unexpressed": comparison(0.4),
        "traits": comparison(0.7),
        "unknown_traits": 0,
        "genres": {"precision": 1.0, "recall": 0.5},
        "demographics_pooled": {"n": 2, "accuracy": 0.5, "majority": 0.5, "random": 0.4, "unknown": 0},
    }


def test_the_report_holds_the_sections_a_run_wrote(tmp_path: Path) -> None:
    write_section(tmp_path, "recovery", [_recovery()])
    report = write_report(tmp_path)
    assert set(report) == {"format", "recovery"}
    assert json.loads((tmp_path / REPORT_JSON).read_text()) == report
    text = (tmp_path / REPORT_MD).read_text()
    assert "| stance macro-F1, expressed statements (embedded:m) | 0.600" in text
    assert "majority 0.200 (model ×3.00)" in text
    assert "held-out preference accuracy" not in text  # no learning section, no learning rows

    gap = {"value": 0.1, "ci_low": -0.1, "ci_high": 0.3}
    facet = {
        "n": 4, "base": 0.5, names.GRAVITY: 0.75, "control": 0.5, "gap": gap,
        "implicit_reward_accuracy": {names.GRAVITY: 0.75, "control": 0.25, "gap": gap},
    }  # fmt: skip
    swap = {"judge": "embedded:m", "method": names.USER_SUMMARY, "swap_rate": 0.625, "own_wins": 5, "usable": 8,
            "ties": 0, "position_biased": 3, "swap_rate_ci": [0.25, 0.875]}  # fmt: skip
    rows = table_rows({"learning": {"accuracy": {names.VALUES: facet}}, "swap": [swap]})
    assert rows[0] == (
        "held-out preference accuracy, values",
        "base 0.500 / GRAVITY 0.750 / control 0.500 (n 4)",
        "GRAVITY − control +0.100 [-0.100, +0.300]",
    )
    assert rows[1][1] == "GRAVITY 0.750 / control 0.250"
    assert rows[2][1].startswith("0.625 (5 of 8") and "[0.250, 0.875]" in rows[2][1]
    assert "| persona-swap rate" in markdown({"swap": [swap]})
