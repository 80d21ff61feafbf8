"""One training run, end to end: checks, data, model, TRL trainer, resume, adapter directory, AdapterRef.

The batch command, the Kubernetes Job (``python -m gravity_trainer.launch`` under accelerate) and the service's
worker all call :func:`train`. Everything that can be wrong with the input is found by :func:`prepare` and
the data loading that follows it, before the model is loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gravity.v1 import training_pb2
from gravity_core.adapters import ADAPTER_META, read_adapter_ref, write_adapter_ref
from gravity_core.artifacts import sha256_dir
from gravity_core.datasets import DatasetManifest, load_manifest, manifest_sha256
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.logging import get_logger
from gravity_core.skips import SkipLog
from gravity_trainer.data import filter_by_length, limit_to_steps, load_pair_set, split_rows
from gravity_trainer.preflight import (
    RUN_RECORD,
    RUN_STATE,
    WORK_DIR,
    OutState,
    RunIdentity,
    check_base_model,
    check_output_dir,
    check_tokenizer,
    config_sha256,
    pick_hardware,
    use_gradient_checkpointing,
)
from gravity_trainer.progress import ProgressCallback, Reporter
from gravity_trainer.recipes import RecipeConfig, build_recipe, read_config_file, recipe_section

log = get_logger(__name__)


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
        config_sha256=config_sha256(recipe.as_dict()),
    )
    adapter_id = request.adapter_id or default_adapter_id(identity)
    out_state = check_output_dir(request.out, identity) if check_out else OutState.FRESH
    return PreparedRun(request, recipe, dataset, manifest, sha, identity, adapter_id, out_state)


def default_adapter_id(identity: RunIdentity) -> str:
    digest = hashlib.sha256(json.dumps(identity.to_dict(), sort_keys=True).encode()).hexdigest()
    return f"{identity.dataset}-{digest[:10]}"


def train(request: TrainRequest, reporter: Reporter | None = None) -> TrainOutcome:
    started = time.perf_counter()
    prepared = prepare(request)
    reporter = reporter or Reporter()
    if prepared.out_state is OutState.DONE:
        ref = read_adapter_ref(request.out)
        reporter.phase(
            f"{request.out} already holds adapter {ref.adapter_id} from this exact run; nothing to do"
        )
        return TrainOutcome(ref, request.out, already_done=True, record=_read_record(request.out))
    return _Run(prepared, reporter, started).execute()


class _Run:
    def __init__(self, prepared: PreparedRun, reporter: Reporter, started: float) -> None:
        from accelerate import PartialState

        self.p = prepared
        self.recipe = prepared.recipe
        self.reporter = reporter
        self.started = started
        self.state = PartialState()
        self.reporter.main_process = self.state.is_main_process
        self.out = prepared.request.out
        self.work = self.out / WORK_DIR

    def execute(self) -> TrainOutcome:
        _quiet_libraries()
        p, recipe = self.p, self.recipe
        self.reporter.phase(
            f"{recipe.name}: dataset {p.dataset_id} (manifest {p.manifest_sha[:12]}), base {p.request.base_model}, "
            f"{'resuming' if p.out_state is OutState.RESUME else 'new run'} in {self.out}"
        )
        with self._exclusive():
            return self._execute()

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One process trains into a directory at a time (a second `gravity train`, an orphaned child)."""
        if not self.state.is_main_process:
            yield
            return
        from filelock import FileLock, Timeout

        self.work.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.work / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise InvalidInput("out", f"another process is training into {self.out}") from None
        try:
            self._write_run_state()
            yield
        finally:
            lock.release()

    def _execute(self) -> TrainOutcome:
        p, recipe = self.p, self.recipe
        pairs = load_pair_set(p.request.pairs, p.manifest, p.dataset, recipe.kind)
        tokenizer = self._tokenizer()
        lengths = filter_by_length(pairs.rows, tokenizer, recipe.max_length, pairs.skips)
        if not lengths.kept:
            raise InvalidInput(
                "recipe.max_length", f"every prompt is at least max_length={recipe.max_length} tokens long"
            )
        split = split_rows(lengths.kept, recipe.eval_fraction, recipe.max_eval_rows)
        split = limit_to_steps(
            split, recipe.max_steps, recipe.effective_batch(self.state.num_processes), recipe.seed
        )
        self.reporter.phase(
            f"pairs: {len(split.train)} train, {len(split.eval)} held-out from {pairs.users} users "
            f"({pairs.shards} shards); skipped {pairs.skips.total}, completions cut at max_length {lengths.truncated}"
            + (f", {split.beyond_max_steps} beyond max_steps" if split.beyond_max_steps else "")
        )

        from gravity_core.llm.models import resolve_model_path

        hardware = pick_hardware(recipe.precision, recipe.quantization)
        model = _load_model(resolve_model_path(p.request.base_model), hardware)
        n_params = sum(t.numel() for t in model.parameters())
        checkpointing = use_gradient_checkpointing(recipe.gradient_checkpointing, n_params)
        schedule = _schedule(recipe, len(split.train), self.state.num_processes)
        train_ds, eval_ds = self._datasets(split, recipe.kind, lengths.lengths)

        from gravity_trainer.trainers import build_trainer, common_arguments

        arguments = common_arguments(
            recipe, str(self.work), schedule, hardware.precision, hardware.device, checkpointing
        )
        self.reporter.phase(
            f"model: {n_params / 1e6:.0f}M parameters on {hardware.device} in {hardware.precision}"
            f"{' (4-bit QLoRA)' if hardware.quantize_4bit else ''}, gradient checkpointing "
            f"{'on' if checkpointing else 'off'}; {schedule.total_steps} steps, evaluating every {schedule.eval_steps}"
        )
        if recipe.kind == "dpo" and getattr(recipe, "precompute_ref_log_probs", False):
            self.reporter.phase(f"reference log-probabilities for {len(train_ds) + len(eval_ds)} pairs")
        trainer = build_trainer(
            recipe, model, tokenizer, train_ds, eval_ds, arguments, [ProgressCallback(self.reporter)]
        )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # our progress lines replace its raw dicts
        checkpoint = last_checkpoint(self.work)
        resumed_from = _checkpoint_step(checkpoint) if checkpoint else 0
        if checkpoint:
            self.reporter.phase(f"resuming from {checkpoint.name} (step {resumed_from})")
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final = self._final_metrics(trainer)
        outcome = self._save(trainer, split, pairs, lengths.truncated, hardware, resumed_from, final)
        return outcome

    # ------------------------------------------------------------------ pieces
    def _tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        from gravity_core.llm.models import resolve_model_path

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(self.p.request.base_model))
        check_tokenizer(tokenizer, self.p.request.base_model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer

    def _write_run_state(self) -> None:
        if not self.state.is_main_process:
            return
        self.work.mkdir(parents=True, exist_ok=True)
        state = self.work / RUN_STATE
        if not state.is_file():
            _write_json(
                state,
                {
                    "identity": self.p.identity.to_dict(),
                    "adapter_id": self.p.adapter_id,
                    "started_at_ms": int(time.time() * 1000),
                },
            )

    def _datasets(self, split: Any, kind: str, lengths: dict[str, int]) -> tuple[Any, Any]:
        """The train and eval sets, materialised once in the work directory.

        On resume the same files are loaded again, so the tokenised data and the precomputed reference
        log-probabilities that TRL caches next to them are reused instead of recomputed.
        """
        from datasets import Dataset, load_from_disk

        out = []
        for name, rows in (("train", split.train), ("eval", split.eval)):
            path = self.work / "data" / name
            with self.state.main_process_first():
                if not (path / "state.json").is_file() and self.state.is_main_process:
                    records = [
                        {**r.conversational(kind), "pair_id": r.pair_id, "length": lengths.get(r.pair_id, 0)}
                        for r in rows
                    ]
                    tmp = path.with_name(f".{name}.tmp")
                    shutil.rmtree(tmp, ignore_errors=True)
                    Dataset.from_list(records).save_to_disk(str(tmp))
                    os.replace(tmp, path)
            ds = load_from_disk(str(path))
            if len(ds) != len(rows):
                raise InvalidInput(
                    "out", f"{path} holds {len(ds)} rows, expected {len(rows)}; remove {self.work}"
                )
            out.append(ds)
        return out[0], out[1]

    def _final_metrics(self, trainer: Any) -> dict[str, float]:
        """Held-out metrics of the model being saved (the best one when early stopping picked it)."""
        history = [e for e in trainer.state.log_history if "eval_loss" in e]
        # with early stopping the Trainer reloaded the best checkpoint; otherwise the last step is saved
        saved_step = (
            (trainer.state.best_global_step or trainer.state.global_step)
            if self.recipe.early_stopping
            else trainer.state.global_step
        )
        logged = [e for e in history if int(e.get("step", -1)) == saved_step]
        if logged:  # evaluation is deterministic (dropout off, fixed pairs): reuse the logged result
            return _eval_only(logged[-1])
        self.reporter.phase("evaluating the final adapter on the held-out pairs")
        return _eval_only(trainer.evaluate())

    def _save(
        self,
        trainer: Any,
        split: Any,
        pairs: Any,
        truncated: int,
        hardware: Any,
        resumed_from: int,
        final: dict[str, float],
    ) -> TrainOutcome:
        from gravity_trainer.card import render_card

        state = trainer.state
        history = [
            {"step": float(e.get("step", 0)), "epoch": float(e.get("epoch", 0.0)), **_eval_only(e)}
            for e in state.log_history
            if "eval_loss" in e
        ]
        train_losses = [e["loss"] for e in state.log_history if "loss" in e]
        metrics = dict(final)
        if train_losses:
            metrics["train_loss"] = float(train_losses[-1])
        wall = time.perf_counter() - self.started
        ref = training_pb2.AdapterRef(
            adapter_id=self.p.adapter_id,
            method=self.p.dataset,
            recipe=self.recipe.name,
            uri=self.p.request.uri or self.out.resolve().as_uri(),
            base_model=self.p.request.base_model,
            dataset_id=self.p.dataset_id,
            dataset_manifest_sha256=self.p.manifest_sha,
            train_rows=len(split.train),
            eval_rows=len(split.eval),
            steps=state.global_step,
            metrics=metrics,
            created_at_ms=int(time.time() * 1000),
        )
        record = {
            "identity": self.p.identity.to_dict(),
            "config": self.recipe.as_dict(),
            "eval_history": history,
            "train_log": [e for e in state.log_history if "loss" in e],
            "epoch": float(state.epoch or 0.0),
            "users": pairs.users,
            "train_by_facet": _by_facet(split.train),
            "eval_by_facet": _by_facet(split.eval),
            "skipped": pairs.skips.to_dict(),
            "truncated": truncated,
            "held_out_unused": split.held_out_unused,
            "beyond_max_steps": split.beyond_max_steps,
            "device": hardware.device,
            "precision": hardware.precision,
            "quantize_4bit": hardware.quantize_4bit,
            "resumed_from_step": resumed_from,
            "stopped_early": state.global_step < state.max_steps,
            "wall_s": round(wall, 2),
        }
        self.state.wait_for_everyone()
        if self.state.is_main_process:
            model = trainer.accelerator.unwrap_model(trainer.model)
            model.save_pretrained(str(self.out))
            (self.out / "README.md").write_text(
                render_card(ref, record["config"], history, record), encoding="utf-8"
            )
            _write_json(self.out / RUN_RECORD, record)
            shutil.rmtree(self.work, ignore_errors=True)
            ref.sha256 = sha256_dir(self.out, exclude=(ADAPTER_META,))
            write_adapter_ref(self.out, ref)  # written last: its presence marks a finished adapter
        self.state.wait_for_everyone()
        return TrainOutcome(ref, self.out, False, resumed_from, pairs.skips, history, wall, record)


def _schedule(recipe: RecipeConfig, train_rows: int, world: int) -> Any:
    import math

    from gravity_trainer.trainers import Schedule

    batches = math.ceil(train_rows / (recipe.per_device_train_batch_size * world))
    per_epoch = max(1, math.ceil(batches / recipe.gradient_accumulation_steps))
    total = (
        recipe.max_steps if recipe.max_steps > 0 else max(1, math.ceil(per_epoch * recipe.num_train_epochs))
    )
    every = recipe.eval_steps or max(1, math.ceil(total / recipe.evaluations))
    return Schedule(total_steps=total, eval_steps=every)


def _load_model(path: str, hardware: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[hardware.precision]
    kwargs: dict[str, Any] = {"dtype": dtype}
    if hardware.quantize_4bit:
        from accelerate import PartialState
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": PartialState().local_process_index}
    return AutoModelForCausalLM.from_pretrained(path, **kwargs)


def last_checkpoint(work: Path) -> Path | None:
    """The newest complete checkpoint (the Trainer writes trainer_state.json last)."""
    if not work.is_dir():
        return None
    done = [
        d
        for d in work.glob("checkpoint-*")
        if (d / "trainer_state.json").is_file() and _checkpoint_step(d) >= 0
    ]
    return max(done, key=_checkpoint_step) if done else None


def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.rsplit("-", 1)[-1])
    except ValueError:
        return -1


def _eval_only(logs: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in logs.items()
        if k.startswith("eval_")
        and isinstance(v, int | float)
        and not k.endswith(("_runtime", "_per_second", "num_tokens"))
    }


def _by_facet(rows: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.facet] = out.get(r.facet, 0) + 1
    return out


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_record(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _quiet_libraries() -> None:
    """Progress comes from our own lines; library progress bars only on an interactive terminal."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")
        import datasets

        datasets.disable_progress_bars()
    import warnings

    import transformers

    transformers.logging.set_verbosity_warning()
    if not sys.stderr.isatty():
        transformers.utils.logging.disable_progress_bar()
    # TRL's configs still set the renamed gradient_checkpointing flag; the rename is not ours to act on.
    warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.*deprecated", category=FutureWarning)
    warnings.filterwarnings(
        "ignore", message=r".*is_gradient_checkpointing.*deprecated", category=FutureWarning
    )
