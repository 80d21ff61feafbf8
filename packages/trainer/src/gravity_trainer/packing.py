"""Shared-prompt DPO batches: one forward per pair instead of two.

A preference pair is (prompt, chosen, rejected) and TRL's stock DPO forward runs ``prompt + chosen`` and
``prompt + rejected`` as two sequences, so the prompt — in GRAVITY the persona, interests, values summary and
traits, usually longer than either answer — is encoded twice. Here each pair is one row::

    [pad … pad | prompt | chosen … pad | rejected … pad]

with a 4-D attention mask that makes the rejected tokens attend to the prompt and to themselves but never to
the chosen tokens, and position ids that restart the rejected branch right after the prompt. Every token sees
exactly the context it would see in its own sequence, so the log-probabilities are the same as the two-sequence
forward up to float rounding (``tests/test_packing.py`` checks this against the plain forward).

Prompts are left-padded to a common end column, so all completion tokens sit in the last ``C + R + 1`` columns
and the LM head (a fifth of SmolLM2's compute, and a vocabulary-sized softmax) runs on those columns only
(``logits_to_keep``). The first chosen and the first rejected token are both predicted from the last prompt
position, which is why that column is kept too.

Truncation follows TRL's ``keep_start`` rule (``(prompt + completion)[:max_length]``), so both paths train on the
same tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

REF_KEYS = ("ref_chosen_logps", "ref_rejected_logps")


@dataclass
class SharedPromptCollator:
    """Collate tokenized pairs (prompt_ids, chosen_ids, rejected_ids [, ref logps]) into shared-prompt rows."""

    pad_token_id: int
    max_length: int | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prompts = [list(e["prompt_ids"]) for e in examples]
        chosen = [list(e["chosen_ids"]) for e in examples]
        rejected = [list(e["rejected_ids"]) for e in examples]
        if self.max_length is not None:
            chosen = [c[: max(0, self.max_length - len(p))] for p, c in zip(prompts, chosen, strict=True)]
            rejected = [r[: max(0, self.max_length - len(p))] for p, r in zip(prompts, rejected, strict=True)]
        n = len(examples)
        p_max = max(len(p) for p in prompts)
        c_max = max(1, max(len(c) for c in chosen))
        r_max = max(1, max(len(r) for r in rejected))
        width = p_max + c_max + r_max
        slots = c_max + r_max

        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((n, width), dtype=torch.long)
        # Pads attend to themselves only, so no attention row is empty (an all-masked row gives NaN in SDPA).
        mask = torch.eye(width, dtype=torch.bool).repeat(n, 1, 1)
        # Which kept column (0 = last prompt column) predicts each completion slot, the token it must
        # predict, and whether the slot is real.
        pred_cols = torch.zeros((n, slots), dtype=torch.long)
        targets = torch.zeros((n, slots), dtype=torch.long)
        valid = torch.zeros((n, slots), dtype=torch.bool)

        for b, (p, c, r) in enumerate(zip(prompts, chosen, rejected, strict=True)):
            lp, lc, lr = len(p), len(c), len(r)
            p0, c0, r0 = p_max - lp, p_max, p_max + c_max
            input_ids[b, p0:p_max] = torch.tensor(p, dtype=torch.long)
            position_ids[b, p0:p_max] = torch.arange(lp)
            mask[b, p0:p_max, p0:p_max] = torch.tril(torch.ones(lp, lp, dtype=torch.bool))
            if lc:
                input_ids[b, c0 : c0 + lc] = torch.tensor(c, dtype=torch.long)
                position_ids[b, c0 : c0 + lc] = torch.arange(lp, lp + lc)
                mask[b, c0 : c0 + lc, p0:p_max] = True
                mask[b, c0 : c0 + lc, c0 : c0 + lc] = torch.tril(torch.ones(lc, lc, dtype=torch.bool))
                pred_cols[b, :lc] = torch.arange(lc)  # chosen token k is predicted from column p_max - 1 + k
                targets[b, :lc] = torch.tensor(c, dtype=torch.long)
                valid[b, :lc] = True
            if lr:
                input_ids[b, r0 : r0 + lr] = torch.tensor(r, dtype=torch.long)
                position_ids[b, r0 : r0 + lr] = torch.arange(lp, lp + lr)
                mask[b, r0 : r0 + lr, p0:p_max] = True
                mask[b, r0 : r0 + lr, r0 : r0 + lr] = torch.tril(torch.ones(lr, lr, dtype=torch.bool))
                # rejected token 0 is predicted from the last prompt column, token k>0 from the one before it
                pred_cols[b, c_max] = 0
                if lr > 1:
                    pred_cols[b, c_max + 1 : c_max + lr] = torch.arange(c_max + 1, c_max + lr)
                targets[b, c_max : c_max + lr] = torch.tensor(r, dtype=torch.long)
                valid[b, c_max : c_max + lr] = True

        batch: dict[str, torch.Tensor] = {
            "input_ids": input_ids,
            "position_ids": position_ids,
            "attention_mask": mask.unsqueeze(1),
            "pred_cols": pred_cols,
            "targets": targets,
            "valid": valid,
            "chosen_slots": torch.tensor(c_max),
            "real_tokens": torch.tensor(
                sum(len(p) + len(c) + len(r) for p, c, r in zip(prompts, chosen, rejected, strict=True))
            ),
        }
        for key in REF_KEYS:
            if key in examples[0]:
                batch[key] = torch.tensor([float(e[key]) for e in examples])
        return batch


@dataclass
class BranchLogps:
    chosen: torch.Tensor  # (B,) summed log-probabilities of the chosen completion
    rejected: torch.Tensor  # (B,)
    tokens: int  # real tokens in the batch (for throughput accounting)


def branch_logps(model: Any, batch: dict[str, torch.Tensor]) -> BranchLogps:
    """Summed completion log-probabilities of both branches from one shared-prompt forward."""
    pred_cols, targets, valid = batch["pred_cols"], batch["targets"], batch["valid"]
    c_max = int(batch["chosen_slots"])
    kept = targets.shape[1] + 1
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=kept,
        use_cache=False,
    )
    logits = out.logits
    if logits.dtype != torch.float32:
        logits = logits.float()
    rows = torch.arange(logits.shape[0], device=logits.device).unsqueeze(1)
    log_norm = torch.logsumexp(logits, dim=-1)  # (B, kept)
    token_logps = logits[rows, pred_cols, targets] - log_norm[rows, pred_cols]
    token_logps = token_logps.masked_fill(~valid, 0.0)
    return BranchLogps(
        token_logps[:, :c_max].sum(dim=1), token_logps[:, c_max:].sum(dim=1), int(batch["real_tokens"])
    )
