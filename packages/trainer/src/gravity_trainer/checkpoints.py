"""Finding where an interrupted run resumes: the newest complete Trainer checkpoint in the work directory."""

from __future__ import annotations

from pathlib import Path


def last_checkpoint(work: Path) -> Path | None:
    """The newest complete checkpoint (the Trainer writes trainer_state.json last)."""
    if not work.is_dir():
        return None
    done = [
        d
        for d in work.glob("checkpoint-*")
        if (d / "trainer_state.json").is_file() and checkpoint_step(d) >= 0
    ]
    return max(done, key=checkpoint_step) if done else None


def checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[-1])
    except ValueError:
        return -1
