"""How many optimizer steps a run takes and how often it evaluates."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gravity_trainer.recipes import RecipeConfig


@dataclass(frozen=True)
class Schedule:
    """Step counts the Trainer is configured with (derived from the data, the recipe and the world size)."""

    total_steps: int
    eval_steps: int


def plan_schedule(recipe: RecipeConfig, train_rows: int, world: int) -> Schedule:
    batches = math.ceil(train_rows / (recipe.per_device_train_batch_size * world))
    per_epoch = max(1, math.ceil(batches / recipe.gradient_accumulation_steps))
    total = (
        recipe.max_steps if recipe.max_steps > 0 else max(1, math.ceil(per_epoch * recipe.num_train_epochs))
    )
    every = recipe.eval_steps or max(1, math.ceil(total / recipe.evaluations))
    return Schedule(total_steps=total, eval_steps=every)
