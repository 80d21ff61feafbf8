"""The ``[trainer]`` configuration section (env: ``GRAVITY_TRAINER__<KEY>``)."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gravity_core.names import ABLATION_PREFIX, GRAVITY_DPO_RECIPE, RECIPE_FOR_DATASET


def _default_recipe_map() -> dict[str, str]:
    # Ablation datasets ("gravity-no-values", ...) are GRAVITY pairs with a facet removed: same recipe.
    return {**RECIPE_FOR_DATASET, f"{ABLATION_PREFIX}*": GRAVITY_DPO_RECIPE}


class TrainerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Dataset name (the last part of a ShardRef's dataset_id; glob patterns allowed) -> recipe. A completed
    # dataset whose name matches no entry is not trained.
    recipe_for_dataset: dict[str, str] = Field(default_factory=_default_recipe_map)
    # Per-recipe overrides applied to every service run, e.g. {"gravity-dpo": {"max_steps": 8}}.
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # A recipe config file (TOML/YAML; top-level keys for all recipes, [<recipe>] tables per recipe).
    recipe_config: str = ""
    # Base model to train; empty = the writer role's model (llm.writer.model).
    base_model: str = ""
    # The base model's Hugging Face id, named in adapter model cards when base_model is an alias or a local
    # directory whose config.json does not say it (e.g. "meta-llama/Llama-3.1-8B-Instruct"); empty: derived.
    base_model_id: str = ""
    # The adapters' license in their model cards (a Hub license id, e.g. "apache-2.0", "llama3.1"); empty:
    # the base model's when known, else "other" with a note that the base model's license applies.
    license: str = ""
    # Train even when the dataset manifest names another base model.
    allow_base_mismatch: bool = False
    # Where run records and working directories live; empty = <artifacts>/trainer.
    work_dir: str = ""
    # Command prefix that runs one training job; empty = this Python with `-m gravity_trainer.launch`.
    # On a GPU node: ["accelerate", "launch", "--config_file", "/app/configs/accelerate-zero2.yaml",
    # "-m", "gravity_trainer.launch"].
    launcher: list[str] = Field(default_factory=list)
    # With the default launcher, fork every run from one process that imported the training stack once
    # (gravity_trainer.warm): each run after the first starts ~25 s of one core sooner on 2 cores, and a queued
    # run no longer imports beside the one training; costs ~0.5 GB of idle memory once the first run started.
    warm_start: bool = True
    # Start that process with the service, so the first run does not wait for the imports either.
    warm_on_start: bool = False
    # Training runs at once, each in its own process. On one GPU keep 1. On a CPU host a second run fills the
    # cores one run leaves idle (its optimizer steps, evaluation and saving do not spread over every core):
    # two fwd+bwd loops at once finished their steps 1.2-1.3x sooner than one after the other on 2 cores
    # (packages/trainer/README.md). Runs then share the cores, so give them threads that sleep while they
    # wait (OMP_WAIT_POLICY=PASSIVE, which the worker sets when the environment does not say otherwise).
    concurrent_runs: int = Field(1, ge=1, le=64)
    # Seconds between progress updates on Trainer.Status streams.
    status_poll_s: float = Field(1.0, gt=0)
    # Keep the working directory (checkpoints) of a run after its adapter was published.
    keep_work_dirs: bool = False

    def recipe_for(self, dataset: str) -> str | None:
        if dataset in self.recipe_for_dataset:
            return self.recipe_for_dataset[dataset]
        for pattern, recipe in self.recipe_for_dataset.items():
            if fnmatch.fnmatchcase(dataset, pattern):
                return recipe
        return None

    def work_path(self, artifacts_root: Path) -> Path:
        return Path(self.work_dir).expanduser() if self.work_dir else artifacts_root / "trainer"
