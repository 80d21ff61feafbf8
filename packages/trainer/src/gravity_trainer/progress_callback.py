"""The Trainer callback that turns a run's logs into progress events (in the training process only)."""

from __future__ import annotations

import math
from typing import Any

from transformers import TrainerCallback

from gravity_trainer.progress import ProgressEvent, Reporter


def _numeric(logs: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in logs.items() if isinstance(v, int | float) and math.isfinite(float(v))}


class ProgressCallback(TrainerCallback):
    """Turns the Trainer's logs into progress events."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        metrics = _numeric(logs)
        if "train_runtime" in metrics:  # the end-of-training summary, reported by the run itself
            return
        kind = "eval" if any(k.startswith("eval_") for k in metrics) else "log"
        self.reporter.emit(
            ProgressEvent(kind, state.global_step, state.max_steps, float(state.epoch or 0.0), metrics)
        )
