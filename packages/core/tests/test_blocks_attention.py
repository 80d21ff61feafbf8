"""Attention of rows packed after a shared prefix (rows.blocks_attention) against SDPA under the block-diagonal
mask it replaces: random tensors for the arithmetic, the real SmolLM2 for the scores."""

from __future__ import annotations

import pytest
import torch

from gravity_core.llm.embedded.rows import blocks_attention


def _masked_reference(query, key, value, blocks, scale):
    heads, kv_heads = query.shape[1], key.shape[1]
    new = query.shape[2]
    prefix = key.shape[2] - new
    allowed = torch.zeros((new, prefix + new), dtype=torch.bool)
    allowed[:, :prefix] = True
    for offset, n in blocks:
        allowed[offset : offset + n, prefix + offset : prefix + offset + n] = torch.ones(n, n).tril().bool()
    groups = heads // kv_heads
    out = torch.nn.functional.scaled_dot_product_attention(
        query,
        key.repeat_interleave(groups, dim=1),
        value.repeat_interleave(groups, dim=1),
        attn_mask=allowed,
        scale=scale,
    )
    return out.transpose(1, 2)


@pytest.mark.parametrize(
    ("prefix", "blocks", "heads", "kv_heads"),
    [
        (40, [(0, 7), (7, 1), (8, 20)], 9, 3),  # SmolLM2's grouped-query shape, rows of mixed lengths
        (5, [(0, 64)], 4, 4),  # one long row after a short prefix (a judge's ranking row)
        (0, [(0, 3), (3, 5)], 2, 1),  # nothing shared
    ],
)
def test_packed_rows_see_the_prefix_and_only_their_own_earlier_tokens(
    prefix, blocks, heads, kv_heads
) -> None:
    gen = torch.Generator().manual_seed(0)
    new = sum(n for _, n in blocks)
    query = torch.randn((1, heads, new, 16), generator=gen)
    key = torch.randn((1, kv_heads, prefix + new, 16), generator=gen)
    value = torch.randn((1, kv_heads, prefix + new, 16), generator=gen)
    got = blocks_attention(query, key, value, blocks, 0.25)
    assert got.shape == (1, new, heads, 16)
    torch.testing.assert_close(got, _masked_reference(query, key, value, blocks, 0.25), atol=1e-5, rtol=1e-5)


@pytest.mark.model
def test_choice_scores_are_the_same_without_the_mask(embedded_llm, monkeypatch) -> None:
    """The scorer's packed rows through blocks_attention give the masked path's log-probabilities."""
    from gravity_core.llm.embedded import rows

    calls: list[bool] = []

    def counted(*args, **kwargs):
        calls.append(scorer.cascade)
        return blocks_attention(*args, **kwargs)

    monkeypatch.setattr(rows, "blocks_attention", counted)
    persona = [{"role": "user", "content": "You are a retired teacher who loves quiet novels.\nQuestion:\n"}]
    listing = "\n".join(
        f"{c}: a family saga, volume {i}, about a garden and a war." for i, c in enumerate("ABCD")
    )
    suffixes = [f"{listing}\nWhich is best?", "Is a thriller relaxing?", "Rate poetry from A to D."]
    choices = ["A", "B", "C", "D", "none of them"]  # one choice of several tokens: rows of their own
    scorer = embedded_llm.scorer
    results = {}
    for cascade in (False, True):
        scorer.cascade = cascade
        scorer.forget_prefix()
        try:
            results[cascade] = embedded_llm.score_choices_shared_prefix(persona, suffixes, choices)
        finally:
            scorer.cascade = True
    assert calls and all(calls)  # every layer of the cascaded call, none of the masked one
    for masked, cascaded in zip(results[False], results[True], strict=True):
        assert cascaded.logprobs == pytest.approx(masked.logprobs, abs=1e-3)
