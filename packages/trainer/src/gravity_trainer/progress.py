"""Progress of a training run: one line per logging step, and JSON events for the service to stream.

Events go to any number of sinks (the terminal, a JSON Lines file the service tails, a test's list). Only the
main process of a distributed run reports. Nothing here imports the training stack: the service reads these
events without torch (the Trainer callback that writes them is in progress_callback.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The metrics a progress line shows, in order, with short labels.
_LINE_KEYS = (
    ("loss", "loss"),
    ("rewards/accuracies", "acc"),
    ("rewards/margins", "margin"),
    ("eval_loss", "eval_loss"),
    ("eval_rewards/accuracies", "eval_acc"),
    ("eval_rewards/margins", "eval_margin"),
    ("eval_mean_token_accuracy", "eval_tok_acc"),
    ("learning_rate", "lr"),
)


@dataclass
class ProgressEvent:
    # "phase" (a stage of the run), "log" (a training logging step), "eval" (held-out evaluation), "done"
    kind: str
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    at_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def line(self) -> str:
        if self.kind == "phase":
            return self.message
        head = f"{'eval ' if self.kind == 'eval' else ''}step {self.step}/{self.total_steps} epoch {self.epoch:.2f}"
        parts = [head]
        for key, label in _LINE_KEYS:
            if key in self.metrics:
                value = self.metrics[key]
                parts.append(f"{label} {value:.2e}" if key == "learning_rate" else f"{label} {value:.4f}")
        return "  ".join(parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ProgressEvent:
        return cls(**json.loads(text))


Sink = Callable[[ProgressEvent], None]


class JsonlSink:
    """Appends events to a file (the service tails it to stream Trainer.Status)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, event: ProgressEvent) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(event.to_json() + "\n")
            f.flush()


class Reporter:
    """Fans events out to sinks; silent on non-main processes."""

    def __init__(self, sinks: list[Sink] | None = None, main_process: bool = True) -> None:
        self.sinks = list(sinks or [])
        self.main_process = main_process

    def emit(self, event: ProgressEvent) -> None:
        if not self.main_process:
            return
        for sink in self.sinks:
            sink(event)

    def phase(self, message: str, **kw: Any) -> None:
        self.emit(ProgressEvent("phase", message=message, **kw))
