"""The default suite's order: the end-to-end demo runs before the tests that grow the pytest process.

On a fresh 24 GB machine with PyPI's CUDA torch, the kernel killed the suite at the demo, with pytest at
8.0 GB of in-process models (see tests/gravity_testing.py)."""

from __future__ import annotations

import subprocess
import sys

from gravity_testing import REPO


def _collected(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_the_whole_stack_demo_runs_first_and_the_rest_keep_their_order() -> None:
    default = _collected()
    assert default[0].startswith("tests/test_e2e_demo.py::"), default[:3]
    stacks = [node for node in default if node.startswith("tests/test_e2e_demo.py::")]
    rest = [node for node in default if node not in stacks]
    # the same tests in pytest's own order, with the demo left out, are the rest of the default run
    assert rest == _collected("--deselect", *stacks)
    assert rest[0].startswith("packages/core/tests/"), rest[:3]
