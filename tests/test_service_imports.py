"""A service process imports the model stack only when it loads a model, never just to start.

Importing torch, transformers and PEFT costs about 25 s of one core on a 2-core machine; a service that does it
at import time makes every start (and the demo, which starts five at once) that much slower, and the trainer
service never needs them: its runs happen in other processes.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "trl", "sentence_transformers")
SERVICES = (
    "gravity_profiler.service",
    "gravity_pairgen.service",
    "gravity_trainer.service",
    "gravity_generator.service",
    "gravity_judge.service",
)


@pytest.mark.parametrize("module", SERVICES)
def test_importing_a_service_loads_no_model_stack(module: str) -> None:
    script = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [], f"{module} imported {done.stdout.strip()}"
