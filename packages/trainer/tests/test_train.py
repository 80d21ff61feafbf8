"""Real training runs through `gravity train` on the embedded SmolLM2: adapter, model card, AdapterRef, reuse."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gravity_core.adapters import ADAPTER_META, is_adapter_dir, read_adapter_ref
from gravity_core.artifacts import sha256_dir
from gravity_core.cli.main import cli
from gravity_core.datasets import load_manifest, manifest_sha256
from gravity_core.names import method_name

pytestmark = pytest.mark.model

# Demo-sized knobs: a couple of tiny steps, a small held-out set.
SMALL = [
    "--set",
    "per_device_train_batch_size=2",
    "--set",
    "gradient_accumulation_steps=1",
    "--set",
    "max_eval_rows=2",
]


def _train(pairs: Path, recipe: str, out: Path, *extra: str) -> str:
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--pairs",
            str(pairs),
            "--recipe",
            recipe,
            "--out",
            str(out),
            "--max-steps",
            "2",
            *SMALL,
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _assert_adapter(out: Path, pairs: Path, method: str, recipe: str, metric: str, embedded_llm) -> None:
    from gravity_core.llm import GenerationParams

    assert is_adapter_dir(out)
    assert {p.name for p in out.iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "README.md",
        ADAPTER_META,
        "training_run.json",
    }
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and not config.get("modules_to_save")
    assert set(config["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }

    ref = read_adapter_ref(out)
    assert (method_name(ref), ref.recipe, ref.base_model, ref.steps) == (method, recipe, "smollm2-135m", 2)
    assert ref.dataset_id == f"test/{method}"
    assert ref.dataset_manifest_sha256 == manifest_sha256(load_manifest(pairs))
    assert ref.train_rows == 4 and ref.eval_rows >= 1
    assert ref.sha256 == sha256_dir(out, exclude=(ADAPTER_META,))
    assert ref.uri == out.resolve().as_uri()
    assert metric in ref.metrics

    card = (out / "README.md").read_text()
    assert f"| {metric} |" in card and ref.dataset_manifest_sha256 in card and "## Configuration" in card
    assert "Held-out metrics per evaluation step" in card

    embedded_llm.load_adapter("under-test", str(out))
    try:
        text = embedded_llm.chat(
            [{"role": "user", "content": "Describe a poetry book in one sentence."}],
            GenerationParams(max_tokens=12),
            adapter="under-test",
        ).text
    finally:
        embedded_llm.unload_adapter("under-test")
    assert text.strip()


def test_gravity_dpo_writes_a_loadable_adapter_and_is_idempotent(
    make_pairs: Callable[..., Path], tmp_path: Path, embedded_llm
) -> None:
    pairs = make_pairs({"gravity": 6})
    out = tmp_path / "adapter"
    output = _train(pairs, "gravity-dpo", out)
    assert "step 1/2" in output and "step 2/2" in output and "training summary" in output
    _assert_adapter(out, pairs, "gravity", "gravity-dpo", "eval_rewards/accuracies", embedded_llm)
    assert "eval_rewards/margins" in read_adapter_ref(out).metrics

    # training moved the LoRA B matrices away from their zero initialisation
    from safetensors.torch import load_file

    weights = load_file(str(out / "adapter_model.safetensors"))
    assert any(float(t.abs().sum()) > 0 for name, t in weights.items() if "lora_B" in name)

    record = json.loads((out / "training_run.json").read_text())
    assert record["identity"]["recipe"] == "gravity-dpo" and record["config"]["beta"] == 0.3

    before = read_adapter_ref(out)
    again = _train(pairs, "gravity-dpo", out)
    assert "already trained; nothing to do" in again
    assert read_adapter_ref(out) == before


def test_user_sft_writes_a_loadable_adapter(
    make_pairs: Callable[..., Path], tmp_path: Path, embedded_llm
) -> None:
    pairs = make_pairs({"user-sft": 6})
    out = tmp_path / "adapter"
    _train(pairs, "user-sft", out)
    _assert_adapter(out, pairs, "user-sft", "user-sft", "eval_loss", embedded_llm)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("recipe", "dataset", "metric"),
    [("gravity-sft", "gravity-sft", "eval_loss"), ("pref-align", "pref-align", "eval_rewards/accuracies")],
)
def test_other_recipes_write_loadable_adapters(
    make_pairs: Callable[..., Path], tmp_path: Path, embedded_llm, recipe: str, dataset: str, metric: str
) -> None:
    pairs = make_pairs({dataset: 6})
    out = tmp_path / "adapter"
    _train(pairs, recipe, out)
    _assert_adapter(out, pairs, dataset, recipe, metric, embedded_llm)


def test_ablation_dataset_and_bad_input_exit_cleanly(make_pairs: Callable[..., Path], tmp_path: Path) -> None:
    """Bad input is one line on stderr and exit 2, before any model loads."""
    from gravity_core.cli.main import main

    pairs = make_pairs({"gravity-no-values": 4}, base_model="meta-llama/Llama-3.1-8B-Instruct")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "train",
            "--pairs",
            str(pairs),
            "--recipe",
            "gravity-dpo",
            "--dataset",
            "gravity-no-values",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code != 0 and "built for base model" in str(result.exception)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--pairs", str(pairs), "--recipe", "gravity-dpo", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert not (tmp_path / "o").exists()
