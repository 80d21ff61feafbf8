from __future__ import annotations

from pathlib import Path

import pytest

from gravity_core.errors import ConfigError, InvalidInput
from gravity_trainer.recipes import (
    RECIPES,
    DPORecipe,
    SFTRecipe,
    build_recipe,
    parse_overrides,
    read_config_file,
    recipe_section,
)


def test_recipes_carry_the_papers_hyperparameters() -> None:
    dpo = build_recipe("gravity-dpo")
    assert isinstance(dpo, DPORecipe)
    assert (dpo.dataset, dpo.beta, dpo.learning_rate, dpo.num_train_epochs) == ("gravity", 0.3, 2e-5, 3.0)
    assert (dpo.weight_decay, dpo.lr_scheduler_type, dpo.warmup_ratio, dpo.optim) == (
        0.01,
        "cosine",
        0.05,
        "adamw_torch",
    )
    assert dpo.early_stopping

    sft = build_recipe("gravity-sft")
    assert isinstance(sft, SFTRecipe)
    assert (sft.dataset, sft.learning_rate, sft.num_train_epochs) == ("gravity-sft", 1e-4, 5.0)

    user = build_recipe("user-sft")
    assert (user.dataset, user.learning_rate, user.num_train_epochs, user.early_stopping) == (
        "user-sft",
        2e-4,
        5.0,
        True,
    )

    pref = build_recipe("pref-align")
    assert isinstance(pref, DPORecipe)
    assert (pref.dataset, pref.learning_rate, pref.num_train_epochs, pref.early_stopping) == (
        "pref-align",
        2e-5,
        3.0,
        True,
    )
    assert set(RECIPES) == {"gravity-dpo", "gravity-sft", "user-sft", "pref-align"}


def test_layers_apply_in_order_and_nest(tmp_path: Path) -> None:
    config = tmp_path / "recipe.toml"
    config.write_text(
        "max_length = 256\n[gravity-dpo]\nmax_steps = 8\nlora = { r = 4 }\n[user-sft]\nmax_steps = 3\n"
    )
    data = read_config_file(config)
    recipe = build_recipe(
        "gravity-dpo",
        recipe_section(data, "gravity-dpo"),
        {"max_steps": 6},
        parse_overrides(["lora.alpha=8", "beta=0.5"]),
    )
    assert (recipe.max_length, recipe.max_steps, recipe.lora.r, recipe.lora.alpha, recipe.beta) == (
        256,
        6,
        4,
        8,
        0.5,
    )
    sft = build_recipe("user-sft", recipe_section(data, "user-sft"))
    assert (sft.max_length, sft.max_steps) == (256, 3)


def test_yaml_config_is_read(tmp_path: Path) -> None:
    config = tmp_path / "recipe.yaml"
    config.write_text("per_device_train_batch_size: 2\npref-align:\n  beta: 0.1\n")
    recipe = build_recipe("pref-align", recipe_section(read_config_file(config), "pref-align"))
    assert (recipe.per_device_train_batch_size, recipe.beta) == (2, 0.1)


def test_overrides_parse_literals() -> None:
    assert parse_overrides(["a=1", "b=0.5", "c=true", "d=hello", 'e=["q_proj"]']) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "hello",
        "e": ["q_proj"],
    }
    with pytest.raises(InvalidInput, match="key=value"):
        parse_overrides(["novalue"])


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"learning_rate": -1}, "recipe.learning_rate"),
        ({"not_a_knob": 1}, "recipe.not_a_knob"),
        ({"lora.target_modules": ["lm_head"]}, "recipe.lora.target_modules"),
        ({"beta": 0.3}, "recipe.beta"),  # SFT recipes have no beta
    ],
)
def test_bad_overrides_name_the_field(override: dict, field: str) -> None:
    recipe = "user-sft" if "beta" in override else "gravity-dpo"
    with pytest.raises(InvalidInput) as err:
        build_recipe(recipe, override)
    assert err.value.field == field


def test_unknown_recipe_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown recipe"):
        build_recipe("gravity-ppo")
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("max_steps = = 3")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        read_config_file(bad)
