"""Training recipes: one typed config per recipe, loadable from a TOML/YAML file with ``key=value`` overrides.

The four recipes of the paper (§4.1, §4.4, appendix D.1–D.2):

* ``gravity-dpo``  DPO on the GRAVITY pairs: beta 0.3, lr 2e-5, AdamW, weight decay 0.01, cosine schedule,
  warmup 0.05, 3 epochs, early stopping on held-out pairs, LoRA.
* ``gravity-sft``  SFT on the chosen side of the same pairs (§4.4): lr 1e-4, 5 epochs, LoRA.
* ``user-sft``     UserSFT baseline (book description -> the user's review): lr 2e-4, 5 epochs, early stopping.
* ``pref-align``   PrefAlign baseline (aligned vs misaligned descriptions): DPO, lr 2e-5, 3 epochs, early stopping.

Defaults are sized for the embedded SmolLM2-135M on a CPU (see the package README for the paper's GPU values
and ``configs/paper-gpu.toml``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gravity_core import names
from gravity_core.config import parse_report_to
from gravity_core.errors import ConfigError, InvalidInput
from gravity_core.options import deep_merge, nest_dotted

# Where the run's curves go and under which name; they do not change the adapter, so they are not part of the
# run's identity (changing them neither retrains nor blocks a resume).
TRACKING_KEYS = ("report_to", "run_name")

# The attention and MLP projections: what vLLM's LoRA support loads for Llama-family models (no lm_head, no
# embeddings, no modules_to_save).
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    # DPO turns every dropout off (TRL's disable_dropout) so policy and reference agree; SFT uses it.
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))

    @field_validator("target_modules")
    @classmethod
    def _no_head(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one target module is required")
        forbidden = {"lm_head", "embed_tokens"} & set(value)
        if forbidden:
            raise ValueError(
                f"{sorted(forbidden)} cannot carry LoRA weights vLLM loads; use projection modules"
            )
        return value


class RecipeConfig(BaseModel):
    """What every recipe shares: optimisation, evaluation, checkpointing, LoRA, precision."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: ClassVar[str]
    kind: ClassVar[Literal["dpo", "sft"]]

    # The dataset in the pairs directory this recipe trains on by default (--dataset overrides it).
    dataset: str
    learning_rate: float = Field(gt=0)
    num_train_epochs: float = Field(gt=0)
    # > 0 caps the run at this many optimizer steps (demo and smoke runs); only the pairs those steps use
    # are prepared.
    max_steps: int = -1
    per_device_train_batch_size: int = Field(4, ge=1)
    per_device_eval_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(2, ge=1)
    weight_decay: float = Field(0.01, ge=0)
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    optim: str = "adamw_torch"
    max_grad_norm: float = Field(1.0, gt=0)
    # Tokens of prompt + completion; longer completions are cut at the end, prompts that alone reach it are
    # skipped (and counted).
    max_length: int = Field(1024, ge=16)
    seed: int = 13

    # Held-out split: a pair is held out when the hash of its pair_id falls below eval_fraction; at most
    # max_eval_rows of them (the lowest hashes) are evaluated, the rest are simply not trained on.
    eval_fraction: float = Field(0.05, gt=0, lt=0.5)
    max_eval_rows: int = Field(64, ge=1)
    # Evaluate (and checkpoint) this many times over the run; eval_steps > 0 sets the interval instead.
    evaluations: int = Field(4, ge=1)
    eval_steps: int = Field(0, ge=0)
    early_stopping: bool = False
    early_stopping_patience: int = Field(3, ge=1)
    early_stopping_threshold: float = Field(0.0, ge=0)
    logging_steps: int = Field(1, ge=1)
    save_total_limit: int = Field(2, ge=1)

    lora: LoraSettings = Field(default_factory=LoraSettings)
    # auto: 4-bit QLoRA when CUDA and bitsandbytes are present, else none.
    quantization: Literal["auto", "4bit", "none"] = "auto"
    # auto: bf16 on CUDA, fp32 on CPU (bf16 is ~14x slower than fp32 on CPUs without native support).
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # auto: on for models with more than a billion parameters, off below (recomputing activations costs
    # a third more compute and a 135M model does not need the memory).
    gradient_checkpointing: Literal["auto", "on", "off"] = "auto"
    # Batches of similar lengths waste less padding; it changes batch composition, so it is off by default.
    group_by_length: bool = False
    dataloader_num_workers: int = Field(0, ge=0)

    # Experiment tracking, as TRL names it: "tensorboard", "mlflow", "wandb", a list, or "none"; None = the
    # [tracking] section's. run_name: empty = [tracking] run_name, else the adapter id.
    report_to: list[str] | None = None
    run_name: str = ""

    @field_validator("report_to", mode="before")
    @classmethod
    def _trackers(cls, value: Any) -> list[str] | None:
        return None if value is None else parse_report_to(value)

    @property
    def metric_for_best_model(self) -> str:
        return "eval_loss"

    def effective_batch(self, world_size: int = 1) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * world_size

    def as_dict(self) -> dict[str, Any]:
        return {"recipe": self.name, "kind": self.kind, **self.model_dump(mode="json")}

    def identity_dict(self) -> dict[str, Any]:
        """What makes two runs train the same adapter: everything but the tracking keys."""
        return {k: v for k, v in self.as_dict().items() if k not in TRACKING_KEYS}


class DPORecipe(RecipeConfig):
    kind: ClassVar[Literal["dpo", "sft"]] = "dpo"

    beta: float = Field(0.3, gt=0)
    # Reference log-probabilities computed once before training instead of a second forward every step.
    precompute_ref_log_probs: bool = True
    # One forward per pair: the prompt is encoded once and chosen/rejected attend to it as two branches of the
    # same sequence (same math as two sequences; see packing.py). Off = TRL's stock two-sequence forward.
    shared_prompt: bool = True


class SFTRecipe(RecipeConfig):
    kind: ClassVar[Literal["dpo", "sft"]] = "sft"

    # Loss on the completion tokens only (the prompt is conditioning, not something to imitate).
    completion_only_loss: bool = True


class GravityDPO(DPORecipe):
    name: ClassVar[str] = names.GRAVITY_DPO_RECIPE
    dataset: str = names.GRAVITY
    learning_rate: float = Field(2e-5, gt=0)
    num_train_epochs: float = Field(3.0, gt=0)
    early_stopping: bool = True


class PrefAlign(DPORecipe):
    name: ClassVar[str] = names.PREF_ALIGN_RECIPE
    dataset: str = names.PREF_ALIGN
    learning_rate: float = Field(2e-5, gt=0)
    num_train_epochs: float = Field(3.0, gt=0)
    early_stopping: bool = True


class GravitySFT(SFTRecipe):
    name: ClassVar[str] = names.GRAVITY_SFT_RECIPE
    dataset: str = names.GRAVITY_SFT
    learning_rate: float = Field(1e-4, gt=0)
    num_train_epochs: float = Field(5.0, gt=0)


class UserSFT(SFTRecipe):
    name: ClassVar[str] = names.USER_SFT_RECIPE
    dataset: str = names.USER_SFT
    learning_rate: float = Field(2e-4, gt=0)
    num_train_epochs: float = Field(5.0, gt=0)
    early_stopping: bool = True


RECIPES: dict[str, type[RecipeConfig]] = {r.name: r for r in (GravityDPO, GravitySFT, UserSFT, PrefAlign)}


def recipe_class(name: str) -> type[RecipeConfig]:
    if name not in RECIPES:
        raise InvalidInput("recipe", f"unknown recipe {name!r} (known: {', '.join(sorted(RECIPES))})")
    return RECIPES[name]


def parse_value(raw: str) -> Any:
    """A ``--set`` value: JSON or a TOML literal when it parses (numbers, booleans, lists), else the string."""
    try:
        return json.loads(raw)
    except ValueError:
        pass
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["lora.r=8", "max_steps=4"]`` -> ``{"lora.r": 8, "max_steps": 4}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput("set", f"{item!r} is not key=value")
        out[key.strip()] = parse_value(value.strip())
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"recipe config {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as exc:
        raise ConfigError(f"recipe config {p} cannot be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe config {p} must hold a table of settings")
    return data


def recipe_section(data: dict[str, Any], recipe: str) -> dict[str, Any]:
    """Top-level keys apply to every recipe; a ``[<recipe>]`` table adds to them for that recipe only."""
    shared = {k: v for k, v in data.items() if k not in RECIPES}
    specific = data.get(recipe) or {}
    if not isinstance(specific, dict):
        raise ConfigError(f"recipe config section [{recipe}] must be a table")
    return deep_merge(shared, specific)


def build_recipe(
    name: str,
    *layers: dict[str, Any] | None,
) -> RecipeConfig:
    """The recipe's defaults overlaid with each layer in turn (file section, settings, CLI ``--set``).

    Layer keys may be dotted (``lora.r``); a bad key or value is an InvalidInput naming it.
    """
    cls = recipe_class(name)
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer:
            try:
                deep_merge(merged, nest_dotted(layer))
            except ValueError as exc:
                raise InvalidInput(f"recipe.{str(exc).split(':')[0]}", str(exc)) from None
    try:
        return cls.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "recipe"
        raise InvalidInput(f"recipe.{field}", f"{err['msg']} (recipe {name})") from None
