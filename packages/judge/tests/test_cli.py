"""`gravity judge` end to end: bad input as one-line errors, and a small real run on SmolLM2 + MiniLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from judge_fixtures import METHOD_TEXTS, generation, unit_rows

from gravity_core.cli.main import cli
from gravity_core.proto_io import write_jsonl


def _gravity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", *args], capture_output=True, text=True, timeout=300
    )


def test_nothing_judgeable_writes_the_report_and_fails_in_one_line(
    tmp_path: Path, profiles_path: Path
) -> None:
    gens = tmp_path / "g.jsonl"
    write_jsonl(
        [
            generation("U_USA", "B1", "gravity", "no original"),
            generation("U_GHOST", "B1", "original", "o"),
            generation("U_GHOST", "B1", "gravity", "g"),
            generation("U_USA", "B2", "made-up", "x"),
        ],
        gens,
    )
    out = tmp_path / "report"
    proc = _gravity("judge", "--generations", str(gens), "--profiles", str(profiles_path), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: no (user, book) unit could be judged")
    assert "skipped 3: " in proc.stdout and "missing_original=1" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["sample"]["units"] == 0
    assert report["skipped"]["by_reason"] == {
        "missing_original": 1,
        "missing_profile": 1,
        "unknown_method": 1,
    }
    assert (out / "report.md").is_file() and (out / "report.html").is_file()


def test_unknown_method_option_and_missing_file_are_one_line_errors(
    tmp_path: Path, profiles_path: Path
) -> None:
    proc = _gravity(
        "judge",
        "--generations",
        str(profiles_path),
        "--profiles",
        str(profiles_path),
        "--out",
        str(tmp_path),
        "--methods",
        "gravity,nope",
    )
    assert (
        proc.returncode == 2
        and "--methods: unknown method(s): nope" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    proc = _gravity(
        "judge",
        "--generations",
        str(tmp_path / "missing.jsonl"),
        "--profiles",
        str(profiles_path),
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr


@pytest.mark.model
def test_real_run_on_the_embedded_judge(tmp_path: Path, profiles_path: Path, embedded_llm) -> None:  # type: ignore[no-untyped-def]
    """Two (user, book) units, SmolLM2 as the judge (the session model: same endpoint settings), MiniLM similarity."""
    texts = {k: v.replace("VIVID", "vivid") for k, v in METHOD_TEXTS.items() if k != "base-rewrite"}
    rows = unit_rows("U_USA", "B1", texts) + unit_rows("U_JPN", "B1", texts, "Children's Books")
    rows.append(generation("U_JPN", "B1", "gravity", "duplicate"))
    gens = tmp_path / "generations.jsonl"
    write_jsonl(rows, gens)
    config = tmp_path / "gravity.toml"
    config.write_text(
        "[llm.defaults]\nmax_tokens = 64\n\n[cache]\nenabled = false\n\n[judge]\nbootstrap_samples = 100\n"
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "judge",
            "--generations",
            str(gens),
            "--profiles",
            str(profiles_path),
            "--out",
            str(out),
            "--orders",
            "2",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "gravity judge — smollm2-135m (embedded), 2 units, 2 users" in result.output
    assert "skipped 1: duplicate_row=1" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["judge"]["model"] == "smollm2-135m" and report["judge"]["answers"] == {
        "logprobs": 2 * 2 + 2 * 3 * 2 + 2 * 4
    }
    assert report["unusable"]["total"] == 0
    overall = report["metrics"]["overall"]
    wins = [overall[k]["top1_win_rate"]["value"] for k in ("original", "lamp", "gravity")]
    assert sum(wins) == pytest.approx(100.0, abs=1e-3)
    for method in ("lamp", "gravity", "gravity-no-values"):
        assert overall[method]["preference_gain"]["n"] == 2
        assert 0.0 < overall[method]["similarity"]["value"] < 100.0
        assert 1.0 <= overall[method]["interestingness"]["value"] <= 5.0
    assert set(report["metrics"]["by_country"]) == {"USA", "Japan"}
    assert report["ablations"]["tests"][0]["n_pairs"] == 2
    assert report["llm_usage"]["prompt_tokens"] > 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
