"""Checks that run before any model is loaded: base model vs manifest, output directory state, hardware.

Each failure is a GravityError with a message that says what is wrong and what to do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from gravity_core.adapters import ADAPTER_META, read_adapter_ref
from gravity_core.errors import InvalidInput, Unsupported
from gravity_core.llm.models import SMOLLM2_ALIASES, SMOLLM2_DIRNAME

WORK_DIR = ".gravity-work"  # checkpoints and run state, inside the output directory until the run ends
RUN_STATE = "run.json"
RUN_RECORD = "training_run.json"  # identity, config and eval history of a finished adapter


@dataclass(frozen=True)
class RunIdentity:
    """What makes two runs the same run: resuming is only allowed when all of it matches."""

    recipe: str
    dataset: str
    dataset_manifest_sha256: str
    base_model: str
    config_sha256: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"recipe {self.recipe} on dataset {self.dataset} (manifest {self.dataset_manifest_sha256[:12]}, "
            f"base {self.base_model}, config {self.config_sha256[:12]})"
        )


def config_sha256(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode("utf-8")).hexdigest()


def canonical_model_name(name: str) -> str:
    """Comparable form of a model reference: aliases folded, paths and hub ids reduced to their last part."""
    text = name.strip().rstrip("/")
    if text.lower() in SMOLLM2_ALIASES:
        return SMOLLM2_DIRNAME
    return text.replace("\\", "/").rsplit("/", 1)[-1].lower()


def check_base_model(manifest_base: str, base_model: str, allow_mismatch: bool) -> None:
    """The pairs were written for one writer model (its prompt format and token budget): train that model."""
    if not manifest_base or allow_mismatch:
        return
    if canonical_model_name(manifest_base) != canonical_model_name(base_model):
        raise InvalidInput(
            "base_model",
            f"the pairs were built for base model {manifest_base!r} but this run would train {base_model!r}; "
            "train the model the manifest names (--base-model) or pass --allow-base-mismatch",
        )


def check_tokenizer(tokenizer: Any, base_model: str) -> None:
    """Shards hold plain-text turns rendered with the model's chat template: the tokenizer must have one."""
    if not getattr(tokenizer, "chat_template", None):
        raise InvalidInput(
            "base_model",
            f"the tokenizer of {base_model!r} has no chat template, so the pairs' user/assistant turns "
            "cannot be rendered as they are at inference; use an instruct model",
        )
    if tokenizer.eos_token is None:
        raise InvalidInput("base_model", f"the tokenizer of {base_model!r} has no end-of-sequence token")


class OutState(Enum):
    FRESH = "fresh"  # empty or missing: start a new run
    RESUME = "resume"  # an interrupted run of the same identity
    DONE = "done"  # the same adapter already finished here


def check_output_dir(out: Path, identity: RunIdentity) -> OutState:
    """Refuse to mix runs: a directory holding another adapter or run, or unrelated files, is an error."""
    if not out.exists():
        return OutState.FRESH
    if not out.is_dir():
        raise InvalidInput("out", f"{out} exists and is not a directory")
    state_file = out / WORK_DIR / RUN_STATE
    if (out / ADAPTER_META).is_file():
        record = _read_json(out / RUN_RECORD)
        ref = read_adapter_ref(out)
        if record.get("identity") == identity.to_dict():
            return OutState.DONE
        raise InvalidInput(
            "out",
            f"{out} already holds adapter {ref.adapter_id!r} (recipe {ref.recipe}, dataset {ref.dataset_id}, "
            f"manifest {ref.dataset_manifest_sha256[:12]}); choose another --out or remove it",
        )
    if state_file.is_file():
        previous = _read_json(state_file).get("identity")
        if previous == identity.to_dict():
            return OutState.RESUME
        other = (
            RunIdentity(**previous)
            if isinstance(previous, dict) and previous.keys() == identity.to_dict().keys()
            else None
        )
        raise InvalidInput(
            "out",
            f"{out} holds an unfinished run of {other.describe() if other else 'another configuration'}; this run is "
            f"{identity.describe()}. Rerun with the same settings to resume it, or choose another --out",
        )
    if any(out.iterdir()):
        raise InvalidInput(
            "out", f"{out} is not empty and holds no GRAVITY adapter or run; choose an empty directory"
        )
    return OutState.FRESH


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda" or "cpu"
    precision: str  # "fp32" | "bf16" | "fp16"
    quantize_4bit: bool


def pick_hardware(precision: str, quantization: str) -> Hardware:
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    elif precision == "fp16" and not cuda:
        raise Unsupported(
            "precision fp16 needs a CUDA device; use fp32 (bf16 works but is slow on most CPUs)"
        )
    bnb = _has_bitsandbytes()
    if quantization == "4bit" and not (cuda and bnb):
        raise Unsupported("quantization 4bit (QLoRA) needs a CUDA device and the bitsandbytes package")
    quantize = quantization == "4bit" or (quantization == "auto" and cuda and bnb)
    return Hardware("cuda" if cuda else "cpu", precision, quantize)


def use_gradient_checkpointing(setting: str, n_params: int) -> bool:
    """auto: only for models above a billion parameters, where activations, not compute, are the limit."""
    if setting == "auto":
        return n_params > 1_000_000_000
    return setting == "on"


def _has_bitsandbytes() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None
