"""The adapter's model card (README.md): what was trained on what, how, and how well on held-out pairs."""

from __future__ import annotations

import json
from typing import Any

from gravity.v1 import training_pb2
from gravity_core import names

_PAPER = "GRAVITY: personalized text generation from profile-grounded synthetic preferences (Dey et al.)"
_HEADLINE = (
    "eval_loss",
    "eval_rewards/accuracies",
    "eval_rewards/margins",
    "eval_rewards/chosen",
    "eval_rewards/rejected",
    "eval_mean_token_accuracy",
)


def render_card(
    ref: training_pb2.AdapterRef,
    config: dict[str, Any],
    eval_history: list[dict[str, float]],
    run: dict[str, Any],
) -> str:
    kind = config.get("kind", "")
    tags = ["gravity", "peft", "lora", "trl", "dpo" if kind == "dpo" else "sft"]
    lines = [
        "---",
        f"base_model: {ref.base_model}",
        "library_name: peft",
        "tags:",
        *[f"- {t}" for t in tags],
        "---",
        "",
        f"# {ref.adapter_id}",
        "",
        f"A LoRA adapter serving the **{names.method_name(ref)}** generation method of GRAVITY, trained with the "
        f"`{ref.recipe}` recipe ({'DPO' if kind == 'dpo' else 'SFT'}, TRL + PEFT) — {_PAPER}.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{ref.base_model}` |",
        f"| recipe | `{ref.recipe}` |",
        f"| dataset | `{ref.dataset_id}` |",
        f"| dataset manifest sha256 | `{ref.dataset_manifest_sha256}` |",
        f"| train pairs | {ref.train_rows} |",
        f"| held-out pairs | {ref.eval_rows} |",
        f"| optimizer steps | {ref.steps} |",
        f"| epochs | {run.get('epoch', 0.0):.2f} |",
        f"| users | {run.get('users', 0)} |",
        f"| device / precision | {run.get('device', '?')} / {run.get('precision', '?')}"
        f"{' (4-bit QLoRA)' if run.get('quantize_4bit') else ''} |",
        f"| wall time | {run.get('wall_s', 0.0):.1f} s |",
        f"| resumed from step | {run.get('resumed_from_step', 0)} |",
        f"| stopped early | {'yes' if run.get('stopped_early') else 'no'} |",
        "",
        "## Held-out metrics (final)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in sorted(ref.metrics, key=lambda k: (k not in _HEADLINE, k)):
        lines.append(f"| {key} | {ref.metrics[key]:.4f} |")
    lines += ["", "## Held-out metrics per evaluation step", ""]
    columns = [k for k in _HEADLINE if any(k in e for e in eval_history)]
    if eval_history and columns:
        lines.append("| step | epoch | " + " | ".join(columns) + " |")
        lines.append("|---" * (len(columns) + 2) + "|")
        for e in eval_history:
            cells = [f"{e[c]:.4f}" if c in e else "" for c in columns]
            lines.append(
                f"| {int(e.get('step', 0))} | {e.get('epoch', 0.0):.2f} | " + " | ".join(cells) + " |"
            )
    else:
        lines.append(
            "No evaluation ran during training; the final metrics above come from the end-of-run evaluation."
        )
    lines += [
        "",
        "## Data",
        "",
        f"Pairs per facet (train): {json.dumps(run.get('train_by_facet', {}), sort_keys=True)}.",
        f"Rows skipped while reading: {run.get('skipped', {}).get('total', 0)} "
        f"({json.dumps(run.get('skipped', {}).get('by_reason', {}), sort_keys=True)}); "
        f"completions cut at max_length: {run.get('truncated', 0)}.",
        "The held-out split is deterministic: a pair is held out when the SHA-256 of its pair_id falls below "
        f"eval_fraction ({config.get('eval_fraction')}).",
        "",
        "## Configuration",
        "",
        "```json",
        json.dumps(config, indent=2, sort_keys=True),
        "```",
        "",
        "## Use",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM",
        "from gravity_core.llm.models import resolve_model_path  # aliases such as smollm2-135m",
        f'base = AutoModelForCausalLM.from_pretrained(resolve_model_path("{ref.base_model}"))',
        'model = PeftModel.from_pretrained(base, "<this directory>")',
        "```",
        "",
        f"vLLM: `--enable-lora --lora-modules {ref.method}=<this directory>` (or POST /v1/load_lora_adapter).",
        "",
    ]
    return "\n".join(lines)
