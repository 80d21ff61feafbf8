"""Shared-prompt batches compute what TRL's two-sequence DPO computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gravity_trainer.packing import SharedPromptCollator, branch_logps

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smollm() -> tuple:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gravity_core.llm.models import resolve_model_path

    path = resolve_model_path("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return path, tokenizer, model


def _ids(tokenizer, messages, generation_prompt=False) -> list[int]:
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def _example(tokenizer, prompt: str, chosen: str, rejected: str) -> dict:
    user = [{"role": "user", "content": prompt}]
    p = _ids(tokenizer, user, True)
    c = _ids(tokenizer, [*user, {"role": "assistant", "content": chosen}])
    r = _ids(tokenizer, [*user, {"role": "assistant", "content": rejected}])
    assert c[: len(p)] == p and r[: len(p)] == p
    return {"prompt_ids": p, "chosen_ids": c[len(p) :], "rejected_ids": r[len(p) :]}


def _plain_logp(model, prompt_ids: list[int], completion_ids: list[int], max_length: int | None) -> float:
    ids = (prompt_ids + completion_ids)[:max_length] if max_length else prompt_ids + completion_ids
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits.log_softmax(-1)[0]
    return sum(float(logp[t - 1, ids[t]]) for t in range(len(prompt_ids), len(ids)))


def test_branch_logps_match_separate_sequences(smollm: tuple) -> None:
    _, tokenizer, model = smollm
    examples = [
        _example(
            tokenizer,
            "You are a young female from Japan. Which book next?",
            "Poetry",
            "A long business book about markets",
        ),
        _example(
            tokenizer,
            "You are a senior male from Brazil. You enjoy reading History. A friend invites you to a loud party.",
            "I would rather spend a quiet evening reading about the history of my city.",
            "Let's go!",
        ),
        _example(tokenizer, "Which scenario feels right?", "Maria walks in the park.", "John works late."),
    ]
    for max_length in (None, 70):  # 70 cuts the long chosen answer, as TRL's keep_start truncation does
        batch = SharedPromptCollator(tokenizer.pad_token_id, max_length)(examples)
        with torch.no_grad():
            out = branch_logps(model, batch)
        for i, e in enumerate(examples):
            chosen = _plain_logp(model, e["prompt_ids"], e["chosen_ids"], max_length)
            rejected = _plain_logp(model, e["prompt_ids"], e["rejected_ids"], max_length)
            assert float(out.chosen[i]) == pytest.approx(chosen, abs=2e-3)
            assert float(out.rejected[i]) == pytest.approx(rejected, abs=2e-3)
        assert batch["input_ids"].shape[0] == len(examples)  # one row per pair instead of two sequences


@pytest.mark.slow
def test_tuned_dpo_follows_trls_loss_curve(smollm: tuple, tmp_path: Path) -> None:
    """The benchmark's two setups train the same way: same losses step by step (a large lr makes them move)."""
    from gravity_trainer.bench import compare, synthetic_pairs

    path, _, _ = smollm
    result = compare(
        path, synthetic_pairs(6), steps=3, batch_size=2, workdir=tmp_path, lora_r=4, learning_rate=2e-3
    )
    assert len(result.baseline.losses) == len(result.tuned.losses) == 3
    assert abs(result.baseline.losses[-1] - 0.6931) > 1e-3, (
        "the adapter must have moved for the check to mean anything"
    )
    assert result.max_loss_diff < 2e-3
    assert result.baseline.pairs_per_s > 0 and result.tuned.pairs_per_s > 0 and result.tuned.peak_rss_mb > 0
