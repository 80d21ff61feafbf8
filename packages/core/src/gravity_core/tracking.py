"""Experiment tracking: one small interface over TensorBoard, MLflow and Weights & Biases (issue 18).

Training logs its curves through the Hugging Face Trainer's own integrations (``report_to``, configured by
:func:`trainer_environment` and :func:`tensorboard_run_dir`); the judge logs its aggregates, breakdowns and
report files through :func:`open_tracker`. Both read the one ``[tracking]`` section, so a training run and the
evaluation of its adapter land in the same tracker.

TensorBoard needs ``gravity-core[tracking]`` (and torch, for its ``SummaryWriter``) and works offline. MLflow and
W&B are configuration only here: their extras (``gravity-core[mlflow]``, ``[wandb]``) are never installed by a
GRAVITY package, and asking for one that is missing is a :class:`~gravity_core.extras.MissingExtra` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from gravity_core.config import Settings, TrackingSettings, parse_report_to
from gravity_core.extras import require
from gravity_core.files import write_bytes
from gravity_core.identifiers import check_segment

FILES_DIR = "files"  # TensorBoard: report files copied next to the run's event files


class Tracker(Protocol):
    """What a GRAVITY stage logs to an experiment tracker."""

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None: ...

    def log_text(self, name: str, text: str) -> None: ...

    def log_file(self, path: Path) -> None: ...

    def close(self) -> None: ...

    @property
    def label(self) -> str: ...


def check_backends(report_to: Sequence[str]) -> None:
    """Fail before any work starts when a requested tracker cannot be used here (MissingExtra naming the
    extra to install)."""
    for name in report_to:
        if name == "tensorboard":
            require("tracking", "report_to tensorboard")
            require("models", "report_to tensorboard (its SummaryWriter comes with torch)")
        else:
            require(name, f"report_to {name}")


def tensorboard_root(settings: Settings) -> Path:
    tracking = settings.tracking
    return (
        Path(tracking.dir).expanduser()
        if tracking.dir
        else settings.artifacts.path() / "tracking" / "tensorboard"
    )


def tensorboard_run_dir(settings: Settings, run_name: str) -> Path:
    """Where a run's TensorBoard event files go: ``<tracking.dir>/<run name>``."""
    return tensorboard_root(settings) / check_segment("run_name", run_name)


def trainer_environment(tracking: TrackingSettings) -> dict[str, str]:
    """Environment variables the Trainer's MLflow and W&B integrations read (they take no arguments)."""
    env: dict[str, str] = {}
    if "mlflow" in tracking.report_to:
        env["MLFLOW_EXPERIMENT_NAME"] = tracking.experiment
        if tracking.mlflow_tracking_uri:
            env["MLFLOW_TRACKING_URI"] = tracking.mlflow_tracking_uri
    if "wandb" in tracking.report_to:
        env["WANDB_PROJECT"] = tracking.experiment
        if tracking.wandb_entity:
            env["WANDB_ENTITY"] = tracking.wandb_entity
    return env


class TensorBoardTracker:
    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = log_dir
        self.label = f"tensorboard ({log_dir})"
        self._writer = SummaryWriter(log_dir=str(log_dir))

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        for tag, value in metrics.items():
            self._writer.add_scalar(tag, float(value), step)

    def log_text(self, name: str, text: str) -> None:
        self._writer.add_text(name, text)

    def log_file(self, path: Path) -> None:
        """TensorBoard has no artifact store: the file is copied into ``<run dir>/files/``."""
        write_bytes(self.log_dir / FILES_DIR / path.name, path.read_bytes())

    def close(self) -> None:
        self._writer.close()


_MLFLOW_UNSAFE = re.compile(r"[^\w.\- /:]")


class MLflowTracker:  # configuration only: not exercised without an MLflow server
    def __init__(self, tracking: TrackingSettings, run_name: str) -> None:
        import mlflow

        self._mlflow = mlflow
        self.label = f"mlflow (experiment {tracking.experiment})"
        if tracking.mlflow_tracking_uri:
            mlflow.set_tracking_uri(tracking.mlflow_tracking_uri)
        mlflow.set_experiment(tracking.experiment)
        self._run = mlflow.start_run(run_name=run_name)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        # MLflow accepts letters, digits, _ - . space / : in metric names; genres such as "Business & Money"
        # are otherwise refused.
        self._mlflow.log_metrics(
            {_MLFLOW_UNSAFE.sub("_", k): float(v) for k, v in metrics.items()}, step=step
        )

    def log_text(self, name: str, text: str) -> None:
        self._mlflow.log_text(text, name)

    def log_file(self, path: Path) -> None:
        self._mlflow.log_artifact(str(path))

    def close(self) -> None:
        self._mlflow.end_run()


class WandbTracker:  # configuration only: not exercised without a W&B account
    def __init__(self, tracking: TrackingSettings, run_name: str) -> None:
        import wandb

        self._wandb = wandb
        self.label = f"wandb (project {tracking.experiment})"
        self._run = wandb.init(
            project=tracking.experiment, entity=tracking.wandb_entity or None, name=run_name, reinit=True
        )

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self._run.log(dict(metrics), step=step)

    def log_text(self, name: str, text: str) -> None:
        self._run.log({name: self._wandb.Html(f"<pre>{_escape(text)}</pre>")})

    def log_file(self, path: Path) -> None:
        self._run.save(str(path), base_path=str(path.parent), policy="now")

    def close(self) -> None:
        self._run.finish()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Trackers:
    """Every configured tracker of one run behind the one interface."""

    def __init__(self, run_name: str, trackers: Sequence[Tracker]) -> None:
        self.run_name = run_name
        self.trackers = list(trackers)

    def describe(self) -> str:
        return f"run {self.run_name} in " + ", ".join(t.label for t in self.trackers)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        for t in self.trackers:
            t.log_metrics(metrics, step)

    def log_text(self, name: str, text: str) -> None:
        for t in self.trackers:
            t.log_text(name, text)

    def log_file(self, path: Path) -> None:
        for t in self.trackers:
            t.log_file(path)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


def open_tracker(
    settings: Settings, run_name: str, report_to: Sequence[str] | None = None
) -> Trackers | None:
    """The trackers of ``report_to`` (default: ``[tracking] report_to``) for one run; None when there are
    none. Raises MissingExtra before opening anything when one cannot be used."""
    names = parse_report_to(list(report_to)) if report_to is not None else settings.tracking.report_to
    if not names:
        return None
    check_segment("run_name", run_name)
    check_backends(names)
    opened: list[Tracker] = []
    for name in names:
        if name == "tensorboard":
            opened.append(TensorBoardTracker(tensorboard_run_dir(settings, run_name)))
        elif name == "mlflow":
            opened.append(MLflowTracker(settings.tracking, run_name))
        else:
            opened.append(WandbTracker(settings.tracking, run_name))
    return Trackers(run_name, opened)
