"""What a finished run leaves behind: the adapter, its model card, the run record and the AdapterRef.

The AdapterRef (``gravity_adapter.json``) is written last: its presence marks a finished adapter, and its
checksum covers everything else in the directory.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gravity.v1 import training_pb2
from gravity_core import names
from gravity_core.adapters import ADAPTER_META, write_adapter_ref
from gravity_core.artifacts import sha256_dir
from gravity_core.files import write_json, write_text
from gravity_trainer.card import BaseModelFacts, render_card
from gravity_trainer.data import PairSet, Split
from gravity_trainer.preflight import RUN_RECORD, Hardware
from gravity_trainer.progress import Reporter
from gravity_trainer.request import PreparedRun, TrainOutcome


@dataclass
class RunResult:
    """What training produced, for the adapter's ref, card and record."""

    split: Split
    pairs: PairSet
    truncated: int
    hardware: Hardware
    resumed_from: int
    final: dict[str, float]


def final_metrics(trainer: Any, early_stopping: bool, reporter: Reporter) -> dict[str, float]:
    """Held-out metrics of the model being saved (the best one when early stopping picked it)."""
    history = [e for e in trainer.state.log_history if "eval_loss" in e]
    # with early stopping the Trainer reloaded the best checkpoint; otherwise the last step is saved
    saved_step = (
        (trainer.state.best_global_step or trainer.state.global_step)
        if early_stopping
        else trainer.state.global_step
    )
    logged = [e for e in history if int(e.get("step", -1)) == saved_step]
    if logged:  # evaluation is deterministic (dropout off, fixed pairs): reuse the logged result
        return eval_only(logged[-1])
    reporter.phase("evaluating the final adapter on the held-out pairs")
    return eval_only(trainer.evaluate())


def save_adapter(
    prepared: PreparedRun, trainer: Any, result: RunResult, state: Any, out: Path, work: Path, started: float
) -> TrainOutcome:
    """Write the adapter directory (main process) and return the outcome (every process)."""
    split, pairs = result.split, result.pairs
    trainer_state = trainer.state
    history = [
        {"step": float(e.get("step", 0)), "epoch": float(e.get("epoch", 0.0)), **eval_only(e)}
        for e in trainer_state.log_history
        if "eval_loss" in e
    ]
    train_losses = [e["loss"] for e in trainer_state.log_history if "loss" in e]
    metrics = dict(result.final)
    if train_losses:
        metrics["train_loss"] = float(train_losses[-1])
    wall = time.perf_counter() - started
    ref = training_pb2.AdapterRef(
        adapter_id=prepared.adapter_id,
        # The adapter serves the method named like its dataset (gravity_core.names).
        **names.method_fields(prepared.dataset),
        recipe=prepared.recipe.name,
        uri=prepared.request.uri or out.resolve().as_uri(),
        base_model=prepared.request.base_model,
        dataset_id=prepared.dataset_id,
        dataset_manifest_sha256=prepared.manifest_sha,
        train_rows=len(split.train),
        eval_rows=len(split.eval),
        steps=trainer_state.global_step,
        metrics=metrics,
        created_at_ms=int(time.time() * 1000),
    )
    record = {
        "identity": prepared.identity.to_dict(),
        "config": prepared.recipe.as_dict(),
        "eval_history": history,
        "train_log": [e for e in trainer_state.log_history if "loss" in e],
        "epoch": float(trainer_state.epoch or 0.0),
        "users": pairs.users,
        "train_by_facet": by_facet(split.train),
        "eval_by_facet": by_facet(split.eval),
        "skipped": pairs.skips.to_dict(),
        "truncated": result.truncated,
        "held_out_unused": split.held_out_unused,
        "beyond_max_steps": split.beyond_max_steps,
        "device": result.hardware.device,
        "precision": result.hardware.precision,
        "quantize_4bit": result.hardware.quantize_4bit,
        "resumed_from_step": result.resumed_from,
        "stopped_early": trainer_state.global_step < trainer_state.max_steps,
        "wall_s": round(wall, 2),
    }
    state.wait_for_everyone()
    if state.is_main_process:
        request = prepared.request
        facts = BaseModelFacts.resolve(request.base_model, request.base_model_id, request.license)
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(str(out))
        if facts.hub_id:
            # adapter_config.json names the Hub id, not the path the base was loaded from; set after saving,
            # since PEFT would look a Hub id up online while saving
            config_path = out / "adapter_config.json"
            config = json.loads(config_path.read_text(encoding="utf-8"))
            write_json(config_path, {**config, "base_model_name_or_path": facts.hub_id})
        write_text(out / "README.md", render_card(ref, record["config"], history, record, facts))
        write_json(out / RUN_RECORD, record)
        shutil.rmtree(work, ignore_errors=True)
        ref.sha256 = sha256_dir(out, exclude=(ADAPTER_META,))
        write_adapter_ref(out, ref)  # written last: its presence marks a finished adapter
    state.wait_for_everyone()
    return TrainOutcome(ref, out, False, result.resumed_from, pairs.skips, history, wall, record)


def eval_only(logs: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in logs.items()
        if k.startswith("eval_")
        and isinstance(v, int | float)
        and not k.endswith(("_runtime", "_per_second", "num_tokens"))
    }


def by_facet(rows: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.facet] = out.get(r.facet, 0) + 1
    return out


def read_record(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
