"""The adapter's model card (README.md) in the Hugging Face Hub's format: what was trained on what, how, how
well on held-out pairs, the prompt the adapter expects, and how to use it with transformers and peft alone.

The front matter names the base model by its Hub id (never an alias or a local path: gravity_core.llm.models
.hub_model_id, or ``[trainer] base_model_id``), the license and the PEFT library; ``gravity publish adapter``
uploads the card with the adapter (gravity_core.hub).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from gravity.v1 import profile_pb2, training_pb2
from gravity_core import names, prompts
from gravity_core.hub import ADAPTER_LINE
from gravity_core.llm.models import hub_model_id, hub_model_license

_PAPER = "GRAVITY: personalized text generation from profile-grounded synthetic preferences (Dey et al.)"
_HEADLINE = (
    "eval_loss",
    "eval_rewards/accuracies",
    "eval_rewards/margins",
    "eval_rewards/chosen",
    "eval_rewards/rejected",
    "eval_mean_token_accuracy",
)
UNKNOWN_BASE = "<the base model's Hugging Face id>"
OTHER_LICENSE = "other"


@dataclass(frozen=True)
class BaseModelFacts:
    """The base model as the Hub knows it: its id ("" when unknown) and the adapter's license."""

    hub_id: str
    license: str

    @classmethod
    def resolve(cls, base_model: str, base_model_id: str = "", license: str = "") -> BaseModelFacts:
        """``[trainer] base_model_id``/``license`` when set, else what is known of ``base_model``."""
        hub_id = base_model_id.strip() or hub_model_id(base_model)
        return cls(hub_id, license.strip() or hub_model_license(hub_id) or OTHER_LICENSE)


def example_profile() -> profile_pb2.UserProfile:
    """An illustrative reader for the card's rendered prompt (not a real user)."""
    p = profile_pb2.UserProfile(
        user_id="example",
        value_summary="Family and tradition matter to her, and she values honesty and quiet reflection.",
    )
    p.demographics.age_group.value = "young"
    p.demographics.gender.value = "female"
    p.demographics.country.value = "Japan"
    p.interests.add(genre="Poetry", share=0.6)
    p.interests.add(genre="Literary Fiction", share=0.4)
    p.personality.traits.add(trait=profile_pb2.TRAIT_OPENNESS, level=profile_pb2.TRAIT_LEVEL_HIGH)
    p.personality.traits.add(trait=profile_pb2.TRAIT_EXTRAVERSION, level=profile_pb2.TRAIT_LEVEL_LOW)
    return p


EXAMPLE_BOOK = (
    "The Lantern Keeper",
    "A retired lighthouse keeper writes letters to the granddaughter she has never met.",
)


def example_prompt(method: str) -> str:
    """The user turn the generator sends this adapter, for the example reader and book."""
    preamble = prompts.adapter_preamble(method, example_profile())
    return prompts.description_prompt(preamble, *EXAMPLE_BOOK)


def front_matter(ref: training_pb2.AdapterRef, kind: str, facts: BaseModelFacts) -> str:
    meta: dict[str, Any] = {}
    if facts.hub_id:
        meta["base_model"] = facts.hub_id
    meta["library_name"] = "peft"
    meta["license"] = facts.license
    if facts.license == OTHER_LICENSE:
        meta["license_name"] = "base-model-license"
    meta["pipeline_tag"] = "text-generation"
    meta["tags"] = ["gravity", "peft", "lora", "trl", "dpo" if kind == "dpo" else "sft", "personalization"]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---"


def usage_snippet(base_id: str, prompt: str) -> list[str]:
    """Python needing transformers, peft and torch only (the test executes it on the local files)."""
    return [
        "```python",
        "import torch",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f"BASE = {json.dumps(base_id)}",
        ADAPTER_LINE,
        "tokenizer = AutoTokenizer.from_pretrained(BASE)",
        "model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), ADAPTER).eval()",
        f"prompt = {json.dumps(prompt, ensure_ascii=False)}",
        "inputs = tokenizer.apply_chat_template(",
        '    [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True',
        ")",
        "with torch.no_grad():",
        "    output = model.generate(**inputs, max_new_tokens=256)",
        'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True))',
        "```",
    ]


def render_card(
    ref: training_pb2.AdapterRef,
    config: dict[str, Any],
    eval_history: list[dict[str, float]],
    run: dict[str, Any],
    facts: BaseModelFacts,
) -> str:
    kind = config.get("kind", "")
    method = names.method_name(ref)
    demographics_only = method in (names.USER_SFT, names.PREF_ALIGN)
    prompt = example_prompt(method)
    base_cell = f"`{facts.hub_id}`" if facts.hub_id else "unknown Hub id (set `[trainer] base_model_id`)"
    license_cell = (
        f"`{facts.license}`"
        if facts.license != OTHER_LICENSE
        else "the base model's license (set `[trainer] license` to name it)"
    )
    lines = [
        front_matter(ref, kind, facts),
        "",
        f"# {ref.adapter_id}",
        "",
        f"A LoRA adapter serving the **{method}** generation method of GRAVITY, trained with the "
        f"`{ref.recipe}` recipe ({'DPO' if kind == 'dpo' else 'SFT'}, TRL + PEFT) — {_PAPER}. Given a reader's "
        "profile and a book, it writes a book description personalized for that reader.",
        "",
        "| | |",
        "|---|---|",
        f"| base model | {base_cell} |",
        f"| license | {license_cell} |",
        f"| recipe | `{ref.recipe}` |",
        f"| dataset | `{ref.dataset_id}` (GRAVITY pairs, dataset `{method}`) |",
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
        "## Prompt format",
        "",
        "One user turn, through the base model's chat template (no system message of our own), then the "
        "assistant's answer is the description:",
        "",
        "```text",
        prompts.description_prompt("{preamble}", "{title}", "{description}"),
        "```",
        "",
        (
            "`{preamble}` is the reader's persona: *You are a {age} {gender} from {country}.* (paper Table 12)."
            if demographics_only
            else "`{preamble}` is the GRAVITY preamble: the reader's persona, interests, values summary and "
            "personality traits (paper Table 12, appendix C) — *You are a {age} {gender} from {country}. You "
            "enjoy reading {interests}. You have the following values: {value summary} and personality traits: "
            "{High/Low trait, …}.* The preference pairs were trained on this preamble followed by each "
            "facet's question; the generator sends it followed by the request above."
        ),
        "",
        "Rendered for an illustrative reader and book:",
        "",
        "```text",
        prompt,
        "```",
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
        "With transformers and peft:",
        "",
        *usage_snippet(facts.hub_id or UNKNOWN_BASE, prompt),
        "",
        f"vLLM: `--enable-lora --lora-modules {method}=<this adapter>` (or POST /v1/load_lora_adapter); "
        f"GRAVITY's generator serves it as method `{method}` once its AdapterRef is published.",
        "",
    ]
    return "\n".join(lines)
