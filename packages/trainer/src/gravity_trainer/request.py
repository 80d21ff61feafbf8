"""What one training run is asked to do, and the fast checks that run before any model is loaded.

:func:`prepare` reads the recipe, the manifest (and its checksum), the base model and the output directory's
state; everything that can be wrong with the input is found here, so a bad request fails in seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravity.v1 import training_pb2
from gravity_core.config import Settings, TrackingSettings
from gravity_core.datasets import DatasetManifest, load_manifest, manifest_sha256
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.identifiers import check_segment
from gravity_core.llm.models import looks_like_hub_id
from gravity_core.skips import SkipLog
from gravity_trainer.preflight import OutState, RunIdentity, check_base_model, check_output_dir, config_sha256
from gravity_trainer.recipes import RecipeConfig, build_recipe, read_config_file, recipe_section
from gravity_trainer.settings import TrainerSettings


@dataclass
class TrainRequest:
    pairs: Path  # the pairs directory (manifest.json + <dataset>/<shard>.parquet)
    recipe: str
    out: Path
    base_model: str
    dataset: str = ""  # default: the recipe's dataset
    config_file: str = ""  # recipe config (TOML/YAML)
    settings_overrides: dict[str, Any] = field(default_factory=dict)  # [trainer.overrides.<recipe>]
    overrides: dict[str, Any] = field(default_factory=dict)  # --set key=value
    allow_base_mismatch: bool = False
    # When the caller knows the manifest's checksum (a ShardRef, a Submit), a different manifest is refused.
    expected_manifest_sha256: str = ""
    adapter_id: str = ""
    uri: str = ""  # the adapter's URI in the ref; default: the output directory's file URI
    # The [tracking] section (report_to and run_name in the recipe override it) and where TensorBoard runs go.
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    tensorboard_root: Path | None = None
    # The base model's Hugging Face id for the model card ([trainer] base_model_id); empty: derived from
    # base_model (gravity_core.llm.models.hub_model_id).
    base_model_id: str = ""
    license: str = ""  # the adapter's license for the model card; empty: the base model's when known


@dataclass(frozen=True)
class RunTracking:
    """Where this run's training curves go: the trackers (TRL's report_to) and the run's name there."""

    report_to: list[str]
    run_name: str
    tensorboard_dir: Path | None  # set when report_to has tensorboard


@dataclass
class PreparedRun:
    request: TrainRequest
    recipe: RecipeConfig
    dataset: str
    manifest: DatasetManifest
    manifest_sha: str
    identity: RunIdentity
    adapter_id: str
    out_state: OutState
    tracking: RunTracking

    @property
    def dataset_id(self) -> str:
        cohort = self.manifest.cohort_id
        return f"{cohort}/{self.dataset}" if cohort else self.dataset


@dataclass
class TrainOutcome:
    ref: training_pb2.AdapterRef
    out: Path
    already_done: bool
    resumed_from_step: int = 0
    skips: SkipLog = field(default_factory=SkipLog)
    eval_history: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0
    record: dict[str, Any] = field(default_factory=dict)


def settings_fields(settings: Settings, section: TrainerSettings) -> dict[str, Any]:
    """The TrainRequest fields filled from settings: tracking, and what the model card names."""
    from gravity_core.tracking import tensorboard_root

    return {
        "tracking": settings.tracking,
        "tensorboard_root": tensorboard_root(settings),
        "base_model_id": section.base_model_id,
        "license": section.license,
    }


def resolve_dataset_arg(pairs: str | None, dataset: str | None) -> tuple[Path, str]:
    """``--dataset`` is a dataset name, or the path of a dataset directory inside a pairs directory.

    So both ``--pairs DIR --dataset gravity`` and ``--dataset DIR/gravity`` work (the GPU Job passes the
    latter); with neither a name nor a path, the recipe's default dataset is used.
    """
    name = (dataset or "").strip()
    if name and ("/" in name or os.sep in name or name.startswith(".")):
        path = Path(name.removeprefix("file://")).expanduser()
        if (path / "manifest.json").is_file():
            return path, ""
        if (path.parent / "manifest.json").is_file():
            if pairs and Path(pairs).expanduser().resolve() != path.parent.resolve():
                raise InvalidInput("dataset", f"{path} is not inside --pairs {pairs}")
            return path.parent, path.name
        raise NotFound("dataset", f"{path} is neither a pairs directory nor a dataset directory inside one")
    if not pairs:
        raise InvalidInput("pairs", "give --pairs DIR (or --dataset DIR/<dataset>)")
    return Path(pairs).expanduser(), name


def prepare(request: TrainRequest, check_out: bool = True) -> PreparedRun:
    """Recipe, manifest (and its checksum), base model and output directory: fast checks, no model."""
    file_layer = (
        recipe_section(read_config_file(request.config_file), request.recipe) if request.config_file else {}
    )
    recipe = build_recipe(request.recipe, file_layer, request.settings_overrides, request.overrides)
    dataset = request.dataset or recipe.dataset
    manifest = load_manifest(request.pairs)
    sha = manifest_sha256(manifest)
    if request.expected_manifest_sha256 and request.expected_manifest_sha256 != sha:
        raise InvalidInput(
            "manifest_sha256",
            f"{request.pairs}/manifest.json has checksum {sha[:16]}…, expected "
            f"{request.expected_manifest_sha256[:16]}… (the manifest changed or is corrupt)",
        )
    entry = manifest.dataset(dataset)
    if entry.kind != recipe.kind:
        raise InvalidInput(
            "dataset",
            f"dataset {dataset!r} holds {entry.kind.upper()} rows; recipe {recipe.name} trains on "
            f"{recipe.kind.upper()} rows",
        )
    check_base_model(manifest.base_model, request.base_model, request.allow_base_mismatch)
    identity = RunIdentity(
        recipe=recipe.name,
        dataset=dataset,
        dataset_manifest_sha256=sha,
        base_model=request.base_model,
        config_sha256=config_sha256(recipe.identity_dict()),
    )
    adapter_id = request.adapter_id or default_adapter_id(identity)
    if request.base_model_id and not looks_like_hub_id(request.base_model_id):
        raise InvalidInput(
            "base_model_id", f"{request.base_model_id!r} is not a Hugging Face model id (ORG/NAME)"
        )
    tracking = run_tracking(request, recipe, adapter_id)
    out_state = check_output_dir(request.out, identity) if check_out else OutState.FRESH
    return PreparedRun(request, recipe, dataset, manifest, sha, identity, adapter_id, out_state, tracking)


def run_tracking(request: TrainRequest, recipe: RecipeConfig, adapter_id: str) -> RunTracking:
    """The recipe's report_to/run_name over the [tracking] section's; a tracker that cannot be used here
    fails now, before any model is loaded."""
    from gravity_core.tracking import check_backends

    report_to = recipe.report_to if recipe.report_to is not None else list(request.tracking.report_to)
    run_name = check_segment("run_name", recipe.run_name or request.tracking.run_name or adapter_id)
    check_backends(report_to)
    tb_dir = None
    if "tensorboard" in report_to:
        if request.tensorboard_root is None:
            raise InvalidInput("report_to", "tensorboard needs a log directory ([tracking] dir)")
        tb_dir = request.tensorboard_root / run_name
    return RunTracking(report_to, run_name, tb_dir)


def default_adapter_id(identity: RunIdentity) -> str:
    digest = hashlib.sha256(json.dumps(identity.to_dict(), sort_keys=True).encode()).hexdigest()
    return f"{identity.dataset}-{digest[:10]}"
