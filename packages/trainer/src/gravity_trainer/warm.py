"""A training process started before its run is known, so a run does not wait for the training stack's imports.

Importing torch, transformers, PEFT and TRL takes about 20-25 s of one core on a 2-core machine (measured:
`import torch, transformers, peft, trl` 24 s), paid by every run in its fresh process — a third of a
demo-sized run. The worker keeps one spare process that has done those imports and waits on stdin for a run:
one JSON line with the run's ``gravity train`` arguments and its log file. The run still gets a process of its
own (memory back after every run, a crash never takes the service down). When the service stops first the
spare reads end-of-file and exits; a spare that died is replaced by a fresh process, as without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

AWAIT_RUN = "--await-run"


def spawn_spare(env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """``python -m gravity_trainer.launch --await-run``: imports now, runs what ``hand_over`` sends later."""
    return subprocess.Popen(
        [sys.executable, "-m", "gravity_trainer.launch", AWAIT_RUN],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(env),
        start_new_session=True,
    )


def hand_over(spare: subprocess.Popen[bytes], argv: list[str], log_file: Path) -> bool:
    """Give the spare its run; False when it is gone (the caller starts a fresh process instead)."""
    if spare.poll() is not None or spare.stdin is None:
        return False
    request = json.dumps({"argv": argv, "log_file": str(log_file)}) + "\n"
    try:
        spare.stdin.write(request.encode("utf-8"))
        spare.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        return False
    return True


def dismiss(spare: subprocess.Popen[bytes]) -> None:
    """Let an unused spare go: it reads end-of-file and exits."""
    if spare.stdin is not None and not spare.stdin.closed:
        with contextlib.suppress(OSError):
            spare.stdin.close()
    try:
        spare.wait(10)
    except subprocess.TimeoutExpired:
        spare.kill()
        spare.wait(5)


def await_run() -> list[str] | None:
    """In the spare: import the training stack, then wait for the run; None when told to exit."""
    preload()
    line = sys.stdin.readline()
    if not line.strip():
        return None
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(request["log_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return [str(arg) for arg in request["argv"]]


def preload() -> None:
    """What every run imports first (transformers and PEFT load their model code lazily, on first access)."""
    import peft
    import transformers
    import trl

    for module, name in (
        (transformers, "AutoModelForCausalLM"),
        (transformers, "AutoTokenizer"),
        (peft, "LoraConfig"),
        (peft, "get_peft_model"),
        (trl, "DPOTrainer"),
        (trl, "SFTTrainer"),
    ):
        getattr(module, name)
    import gravity_trainer.run
    import gravity_trainer.trainers  # noqa: F401
