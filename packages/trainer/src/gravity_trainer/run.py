"""One training run, end to end: prepare, load the data and the model, train (resuming), save.

The batch command, the Kubernetes Job (``python -m gravity_trainer.launch`` under accelerate) and the service's
worker all call :func:`train`. The pieces live in modules of their own: the request and its fast checks
(request.py), the data (data.py), the model (model_loading.py), the schedule (schedule.py), the TRL trainers
(trainers.py), checkpoints (checkpoints.py), the run lock (runlock.py) and what a finished run writes
(saving.py).
"""

from __future__ import annotations

import os
import sys
import time

from gravity_core.adapters import read_adapter_ref
from gravity_core.errors import InvalidInput
from gravity_core.files import write_json
from gravity_trainer.checkpoints import checkpoint_step, last_checkpoint
from gravity_trainer.data import filter_by_length, limit_to_steps, load_pair_set, materialize, split_rows
from gravity_trainer.model_loading import load_model, load_tokenizer
from gravity_trainer.preflight import RUN_STATE, WORK_DIR, OutState, pick_hardware, use_gradient_checkpointing
from gravity_trainer.progress import Reporter
from gravity_trainer.progress_callback import ProgressCallback
from gravity_trainer.request import (
    PreparedRun,
    TrainOutcome,
    TrainRequest,
    default_adapter_id,
    prepare,
    resolve_dataset_arg,
)
from gravity_trainer.runlock import exclusive
from gravity_trainer.saving import RunResult, final_metrics, read_record, save_adapter
from gravity_trainer.schedule import plan_schedule

__all__ = [
    "PreparedRun",
    "TrainOutcome",
    "TrainRequest",
    "default_adapter_id",
    "last_checkpoint",
    "prepare",
    "resolve_dataset_arg",
    "train",
]


def train(request: TrainRequest, reporter: Reporter | None = None) -> TrainOutcome:
    started = time.perf_counter()
    prepared = prepare(request)
    reporter = reporter or Reporter()
    if prepared.out_state is OutState.DONE:
        ref = read_adapter_ref(request.out)
        reporter.phase(
            f"{request.out} already holds adapter {ref.adapter_id} from this exact run; nothing to do"
        )
        return TrainOutcome(ref, request.out, already_done=True, record=read_record(request.out))
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
        quiet_libraries()
        p, recipe = self.p, self.recipe
        self.reporter.phase(
            f"{recipe.name}: dataset {p.dataset_id} (manifest {p.manifest_sha[:12]}), base {p.request.base_model}, "
            f"{'resuming' if p.out_state is OutState.RESUME else 'new run'} in {self.out}"
        )
        with exclusive(self.work, self.out, self.state.is_main_process):
            self._write_run_state()
            return self._execute()

    def _execute(self) -> TrainOutcome:
        p, recipe = self.p, self.recipe
        pairs = load_pair_set(p.request.pairs, p.manifest, p.dataset, recipe.kind)
        tokenizer = load_tokenizer(p.request.base_model)
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

        from gravity_core.llm.models import hub_model_id, resolve_model_path

        hardware = pick_hardware(recipe.precision, recipe.quantization)
        model = load_model(resolve_model_path(p.request.base_model), hardware)
        n_params = sum(t.numel() for t in model.parameters())
        checkpointing = use_gradient_checkpointing(recipe.gradient_checkpointing, n_params)
        schedule = plan_schedule(recipe, len(split.train), self.state.num_processes)
        train_ds, eval_ds = materialize(self.work, split, recipe.kind, lengths.lengths, self.state)

        from gravity_trainer.trainers import build_trainer, common_arguments, tracking_callbacks

        tracking = p.tracking
        arguments = common_arguments(
            recipe,
            str(self.work),
            schedule,
            hardware.precision,
            hardware.device,
            checkpointing,
            tracking.report_to,
            tracking.run_name,
        )
        apply_tracking_environment(p)
        self.reporter.phase(
            f"model: {n_params / 1e6:.0f}M parameters on {hardware.device} in {hardware.precision}"
            f"{' (4-bit QLoRA)' if hardware.quantize_4bit else ''}, gradient checkpointing "
            f"{'on' if checkpointing else 'off'}; {schedule.total_steps} steps, evaluating every {schedule.eval_steps}"
        )
        if recipe.kind == "dpo" and getattr(recipe, "precompute_ref_log_probs", False):
            self.reporter.phase(f"reference log-probabilities for {len(train_ds) + len(eval_ds)} pairs")
        callbacks = [ProgressCallback(self.reporter), *tracking_callbacks(tracking.tensorboard_dir)]
        trainer = build_trainer(recipe, model, tokenizer, train_ds, eval_ds, arguments, callbacks)
        if tracking.report_to:
            where = f" ({tracking.tensorboard_dir})" if tracking.tensorboard_dir else ""
            self.reporter.phase(f"tracking: {', '.join(tracking.report_to)} run {tracking.run_name}{where}")
        if not hub_model_id(p.request.base_model) and not p.request.base_model_id:
            self.reporter.phase(
                f"model card: the Hugging Face id of base model {p.request.base_model} is unknown; set "
                "[trainer] base_model_id to name it (gravity publish refuses an adapter without one)"
            )
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # our progress lines replace its raw dicts
        checkpoint = last_checkpoint(self.work)
        resumed_from = checkpoint_step(checkpoint) if checkpoint else 0
        if checkpoint:
            self.reporter.phase(f"resuming from {checkpoint.name} (step {resumed_from})")
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        final = final_metrics(trainer, recipe.early_stopping, self.reporter)
        result = RunResult(split, pairs, lengths.truncated, hardware, resumed_from, final)
        return save_adapter(self.p, trainer, result, self.state, self.out, self.work, self.started)

    def _write_run_state(self) -> None:
        if not self.state.is_main_process:
            return
        state = self.work / RUN_STATE
        if not state.is_file():
            write_json(
                state,
                {
                    "identity": self.p.identity.to_dict(),
                    "adapter_id": self.p.adapter_id,
                    "started_at_ms": int(time.time() * 1000),
                },
            )


def apply_tracking_environment(prepared: PreparedRun) -> None:
    """MLflow and W&B read their experiment/project from the environment; variables already set win."""
    from gravity_core.tracking import trainer_environment

    settings = prepared.request.tracking.model_copy(update={"report_to": prepared.tracking.report_to})
    for key, value in trainer_environment(settings).items():
        os.environ.setdefault(key, value)


def quiet_libraries() -> None:
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
