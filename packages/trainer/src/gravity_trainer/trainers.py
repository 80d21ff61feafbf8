"""TRL trainers configured from a recipe: DPO (optionally with shared-prompt batches) and SFT, both with LoRA."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from accelerate.utils import is_peft_model
from peft import LoraConfig
from transformers import EarlyStoppingCallback, PreTrainedModel, TrainerCallback
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.utils import use_adapter

from gravity_core.errors import InvalidInput
from gravity_trainer.packing import SharedPromptCollator, branch_logps
from gravity_trainer.recipes import DPORecipe, RecipeConfig, SFTRecipe
from gravity_trainer.schedule import Schedule


class SharedPromptDPOTrainer(DPOTrainer):
    """TRL's DPOTrainer with one shared-prompt forward per pair (see packing.py); the sigmoid DPO loss.

    Everything else — tokenization, reference log-prob precomputation, the training loop, evaluation,
    checkpointing, metric names — is TRL's.
    """

    def __init__(self, *args: Any, length_column: bool = False, **kwargs: Any) -> None:
        self._length_column = length_column
        super().__init__(*args, **kwargs)
        if self.loss_types != ["sigmoid"]:
            raise ValueError("shared-prompt batches implement the sigmoid DPO loss only")

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        columns: list[str] = list(self._signature_columns or [])
        if self._length_column and "length" not in columns:
            # TRL declares the attribute as None at class level; the instance holds the list
            vars(self)["_signature_columns"] = [*columns, "length"]

    def _reference(self) -> contextlib.AbstractContextManager[Any]:
        """With PEFT and no separate reference model, the reference is the model with its adapter disabled."""
        if self.ref_model is None and is_peft_model(self.model):
            unwrapped = self.accelerator.unwrap_model(self.model)
            return use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        return contextlib.nullcontext()

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        with (
            torch.no_grad(),
            disable_gradient_checkpointing(
                cast(PreTrainedModel, self.model),
                cast(dict[str, Any] | None, self.args.gradient_checkpointing_kwargs),
            ),
            self._reference(),
            self.accelerator.autocast(),
        ):
            out = branch_logps(self.ref_model or model, inputs)
        return out.chosen, out.rejected

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        mode = "train" if model.training else "eval"
        policy = branch_logps(model, inputs)
        if "ref_chosen_logps" in inputs:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = self.compute_ref_log_probs(model, inputs)
        chosen_logratios = policy.chosen - ref_chosen
        rejected_logratios = policy.rejected - ref_rejected
        loss = -F.logsigmoid(self.beta * (chosen_logratios - rejected_logratios)).mean()

        metrics = self._metrics[mode]
        gather = self.accelerator.gather_for_metrics
        chosen_rewards = self.beta * chosen_logratios.detach()
        rejected_rewards = self.beta * rejected_logratios.detach()
        if mode == "train":
            self._total_train_tokens += int(gather(torch.tensor(policy.tokens, device=loss.device)).sum())
        metrics["num_tokens"] = [self._total_train_tokens]
        metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(
            gather((chosen_rewards > rejected_rewards).float()).mean().item()
        )
        metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(gather(policy.chosen.detach()).mean().item())
        metrics["logps/rejected"].append(gather(policy.rejected.detach()).mean().item())
        if return_outputs:
            raise ValueError("shared-prompt DPO computes no logits to return; set prediction_loss_only")
        return loss


def lora_config(recipe: RecipeConfig) -> LoraConfig:
    return LoraConfig(
        r=recipe.lora.r,
        lora_alpha=recipe.lora.alpha,
        lora_dropout=recipe.lora.dropout,
        target_modules=list(recipe.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def common_arguments(
    recipe: RecipeConfig,
    output_dir: str,
    schedule: Schedule,
    precision: str,
    device: str,
    gradient_checkpointing: bool,
    report_to: list[str] | None = None,
    run_name: str = "",
) -> dict[str, Any]:
    """TRL config arguments. TensorBoard is left out of ``report_to``: transformers 5 takes its log directory
    only from an environment variable, so :func:`tracking_callbacks` adds the callback with the run's directory."""
    early = recipe.early_stopping
    return {
        "output_dir": output_dir,
        "learning_rate": recipe.learning_rate,
        "num_train_epochs": recipe.num_train_epochs,
        "max_steps": recipe.max_steps,
        "per_device_train_batch_size": recipe.per_device_train_batch_size,
        "per_device_eval_batch_size": recipe.per_device_eval_batch_size,
        "gradient_accumulation_steps": recipe.gradient_accumulation_steps,
        "weight_decay": recipe.weight_decay,
        "lr_scheduler_type": recipe.lr_scheduler_type,
        # transformers 5: a float below 1 is a ratio of the total steps
        "warmup_steps": recipe.warmup_ratio,
        "optim": recipe.optim,
        "max_grad_norm": recipe.max_grad_norm,
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "max_length": recipe.max_length,
        "eval_strategy": "steps",
        "eval_steps": schedule.eval_steps,
        "save_strategy": "steps",
        "save_steps": schedule.eval_steps,
        "save_total_limit": recipe.save_total_limit,
        "load_best_model_at_end": early,
        # early stopping's patience counter survives a resume
        "restore_callback_states_from_checkpoint": early,
        "metric_for_best_model": recipe.metric_for_best_model,
        "greater_is_better": False,
        "logging_strategy": "steps",
        "logging_steps": recipe.logging_steps,
        "report_to": [n for n in (report_to or []) if n != "tensorboard"],
        **({"run_name": run_name} if run_name else {}),
        "disable_tqdm": True,
        "prediction_loss_only": True,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": device == "cpu",
        "gradient_checkpointing": gradient_checkpointing,
        "train_sampling_strategy": "group_by_length" if recipe.group_by_length else "random",
        "dataloader_num_workers": recipe.dataloader_num_workers,
    }


def tracking_callbacks(tensorboard_dir: Path | None) -> list[TrainerCallback]:
    """The TensorBoard callback writing the run's scalars (loss, learning rate, held-out metrics) to
    ``tensorboard_dir``; none without one."""
    if tensorboard_dir is None:
        return []
    from transformers.integrations import TensorBoardCallback

    callback = TensorBoardCallback()
    # read again whenever the writer is (re)opened, e.g. for the evaluation after training
    callback.logging_dir = str(tensorboard_dir)
    return [callback]


def build_trainer(
    recipe: RecipeConfig,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    eval_dataset: Any,
    arguments: dict[str, Any],
    callbacks: list[TrainerCallback],
) -> Any:
    peft = lora_config(recipe)
    callbacks = list(callbacks)
    if recipe.early_stopping:
        callbacks.append(
            EarlyStoppingCallback(
                early_stopping_patience=recipe.early_stopping_patience,
                early_stopping_threshold=recipe.early_stopping_threshold,
            )
        )
    if isinstance(recipe, DPORecipe):
        config = DPOConfig(
            **arguments,
            beta=recipe.beta,
            loss_type=["sigmoid"],
            precompute_ref_log_probs=recipe.precompute_ref_log_probs,
            precompute_ref_batch_size=recipe.per_device_eval_batch_size,
        )
        shared = recipe.shared_prompt and not hasattr(model.config.get_text_config(), "output_router_logits")
        if shared:
            return SharedPromptDPOTrainer(
                model=model,
                args=config,
                data_collator=SharedPromptCollator(tokenizer.pad_token_id, recipe.max_length),
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=tokenizer,
                peft_config=peft,
                callbacks=callbacks,
                length_column=recipe.group_by_length,
            )
        if recipe.group_by_length:
            raise InvalidInput("recipe.group_by_length", "needs shared_prompt batches for DPO recipes")
        return DPOTrainer(
            model=model,
            args=config,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=peft,
            callbacks=callbacks,
        )
    assert isinstance(recipe, SFTRecipe)
    sft_config = SFTConfig(**arguments, completion_only_loss=recipe.completion_only_loss, packing=False)
    return SFTTrainer(
        model=model,
        args=sft_config,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft,
        callbacks=callbacks,
    )
