"""The service CLIs' settings flags are generated from their settings models and validated by them: a bad value
is one line naming the flag, before any model loads (issue 16 item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gravity_core.sample import sample_dir


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["judge", "--bootstrap-samples", "-1"], "--bootstrap-samples"),
        (["pairs", "build", "--items-per-trait", "0"], "--items-per-trait"),
        (["profile", "build", "--min-reviews", "0"], "--min-reviews"),
        (["generate", "--temperature", "3"], "--temperature"),
    ],
)
def test_the_real_commands_reject_a_bad_setting_in_one_line_naming_the_flag(
    argv: list[str], flag: str, tmp_path: Path
) -> None:
    """Each service CLI's settings flags are generated and validated by its settings model."""
    sample = sample_dir()
    files = {
        "judge": ["--generations", str(sample / "Books.jsonl"), "--profiles", str(sample / "Books.jsonl")],
        "pairs": ["--profiles", str(sample / "Books.jsonl")],
        "profile": ["--reviews", str(sample / "Books.jsonl"), "--meta", str(sample / "meta_Books.jsonl")],
        "generate": ["--profiles", str(sample / "Books.jsonl")],
    }[argv[0]]
    out = ["--out", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITY_") or k == "GRAVITY_HOME"}
    result = subprocess.run(
        [sys.executable, "-m", "gravity_core.cli.main", *argv, *files, *out],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert flag in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
