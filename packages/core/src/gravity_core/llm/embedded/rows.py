"""Per-sequence KV storage and the attention that reads it: what lets sequences of any length share a pass.

Continuous batching (engine.py) runs tokens of many sequences through one forward pass, laid out one token
per batch row. Instead of left-padding sequences into one cache (which changes each row's arithmetic with
the batch it lands in), every sequence keeps its own keys and values (:class:`RowKV`), and attention is
computed segment by segment over exactly that sequence's tokens — the same shapes and kernels as when it
runs alone. The matrix products around attention are row-invariant on the packed oneDNN path (packed.py);
where that path is missing, :func:`invariant_row_counts` finds row counts the BLAS treats alike and the
engine pads to one of them. Together this makes a greedy output independent of which other requests
happened to share its passes.

The attention is registered with transformers as ``gravity_rows``; choice scoring passes
``gravity_blocks`` instead (rows packed after a shared prefix, :func:`blocks_attention`), and a forward with
neither keyword (plain ``generate``) falls through to PyTorch SDPA, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

ATTENTION = "gravity_rows"


@dataclass
class RowKV:
    """Keys and values of one sequence, per layer, in buffers that grow by doubling."""

    layers: int
    kv_heads: int
    head_dim: int
    dtype: torch.dtype
    device: str
    capacity: int
    length: int = 0
    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self) -> None:
        shape = (self.kv_heads, max(1, self.capacity), self.head_dim)
        self.keys = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in range(self.layers)]
        self.values = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in range(self.layers)]

    def reserve(self, tokens: int) -> None:
        """Room for ``tokens`` in total (copies once when the buffers must grow)."""
        if tokens <= self.capacity:
            return
        capacity = max(tokens, 2 * self.capacity)
        for store in (self.keys, self.values):
            for i, old in enumerate(store):
                new = torch.empty(
                    (self.kv_heads, capacity, self.head_dim), dtype=self.dtype, device=self.device
                )
                new[:, : self.length] = old[:, : self.length]
                store[i] = new
        self.capacity = capacity

    def load_prefix(self, keys: Sequence[torch.Tensor], values: Sequence[torch.Tensor], n: int) -> None:
        """Start from ``n`` tokens encoded earlier (a prefix-cache hit)."""
        self.reserve(n)
        for layer in range(self.layers):
            self.keys[layer][:, :n] = keys[layer][:, :n]
            self.values[layer][:, :n] = values[layer][:, :n]
        self.length = n

    def prefix(self, n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Copies of the first ``n`` tokens' keys and values (to keep in the prefix cache)."""
        return (
            [k[:, :n].clone() for k in self.keys],
            [v[:, :n].clone() for v in self.values],
        )

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


@dataclass(frozen=True)
class Segment:
    """Tokens ``offset .. offset + n`` of a forward pass belong to ``row``, at positions ``start ..``."""

    row: RowKV
    offset: int
    n: int
    start: int


def rows_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    gravity_rows: Sequence[Segment] | None = None,
    gravity_blocks: Sequence[tuple[int, int]] | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention of each segment over its own stored tokens; SDPA as usual without ``gravity_rows``.

    With ``gravity_rows`` the forward pass lays its tokens out one per batch row (batch = tokens, length 1),
    so that matrix products see every token as a row and peft can route each token to its adapter; the
    segments say which tokens form which sequence. With ``gravity_blocks`` the new tokens are independent
    rows after a shared cached prefix (choice scoring, see :func:`blocks_attention`).
    """
    if gravity_blocks is not None:
        return blocks_attention(query, key, value, gravity_blocks, scaling), None
    if gravity_rows is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    layer = module.layer_idx
    tokens, heads, _, head_dim = query.shape
    out = query.new_zeros((tokens, 1, heads, head_dim))
    for seg in gravity_rows:
        end = seg.start + seg.n
        rows = slice(seg.offset, seg.offset + seg.n)
        seg.row.keys[layer][:, seg.start : end] = key[rows, :, 0].transpose(0, 1)
        seg.row.values[layer][:, seg.start : end] = value[rows, :, 0].transpose(0, 1)
        attended = _attend(
            query[rows, :, 0].transpose(0, 1),
            seg.row.keys[layer][:, :end],
            seg.row.values[layer][:, :end],
            seg.start,
            scaling,
        )
        out[rows, 0] = attended
    return out, None


def blocks_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    blocks: Sequence[tuple[int, int]],
    scaling: float | None,
) -> torch.Tensor:
    """Rows packed after a shared prefix: each row (``offset``, ``n`` among the new tokens) attends to the
    whole prefix and causally to its own tokens, never to another row.

    query (1, heads, new, dim); key/value (1, kv_heads, prefix + new, dim); returns (1, new, heads, dim).
    A block-diagonal mask over the whole square would make SDPA compute every (query, key) pair and throw
    most away (a judge's 1,500-token ranking row after a 150-token persona computed 1.7x the scores it
    used). Instead the prefix is attended without a mask, every row's own block causally, and the two are
    merged by their log-sum-exp weights: the same softmax over the same keys.
    """
    heads, new, head_dim = query.shape[1], query.shape[2], query.shape[3]
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    prefix = key.shape[2] - new
    flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    # The query heads sharing a key/value head are folded into the query length (no mask, so no alignment
    # to keep), so the prefix's keys are never copied per head.
    if prefix > 0:
        folded = query[0].reshape(kv_heads, groups * new, head_dim)[None]
        shared, shared_lse = flash(
            folded, key[:, :, :prefix], value[:, :, :prefix], 0.0, False, scale=scaling
        )[:2]
        shared = shared[0].reshape(heads, new, head_dim)
        shared_lse = shared_lse[0].reshape(heads, new)
    else:  # nothing shared: weight 0
        shared = query.new_zeros((heads, new, head_dim))
        shared_lse = query.new_full((heads, new), float("-inf"))
    # Every row's own tokens in one call: causal when the chunk is one row, else under the block-diagonal
    # mask of the new tokens alone (new x new, small beside new x prefix), so the cost does not grow with
    # the number of rows.
    own_keys = key[0, :, prefix:].repeat_interleave(groups, dim=0)[None]
    own_values = value[0, :, prefix:].repeat_interleave(groups, dim=0)[None]
    if sum(1 for _, n in blocks if n) == 1:
        own, own_lse = flash(query, own_keys, own_values, 0.0, True, scale=scaling)[:2]
    else:
        mask = blocks_mask(blocks, 0, query.dtype, query.device)
        own, own_lse = flash(query, own_keys, own_values, 0.0, False, attn_mask=mask, scale=scaling)[:2]
    own, own_lse = own[0], own_lse[0]
    top = torch.maximum(shared_lse, own_lse)
    w_shared = torch.exp(shared_lse - top)[..., None]
    w_own = torch.exp(own_lse - top)[..., None]
    out = (shared * w_shared + own * w_own) / (w_shared + w_own)
    return out.transpose(0, 1)[None]


def blocks_mask(
    blocks: Sequence[tuple[int, int]], prefix: int, dtype: torch.dtype, device: Any
) -> torch.Tensor:
    """Additive (new, prefix + new) mask of rows packed after a shared prefix: each row sees the prefix and
    its own earlier tokens and itself (``prefix`` 0: the rows' own part alone)."""
    new = sum(n for _, n in blocks)
    allowed = torch.zeros((new, prefix + new), dtype=torch.bool, device=device)
    allowed[:, :prefix] = True
    for offset, n in blocks:
        if n:
            own = torch.ones((n, n), dtype=torch.bool, device=device).tril()
            allowed[offset : offset + n, prefix + offset : prefix + offset + n] = own
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)


def _attend(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, start: int, scaling: float | None
) -> torch.Tensor:
    """One row: query (heads, n, dim) at positions start.., over keys/values (kv_heads, start + n, dim).

    The query heads that share a key/value head are folded into the query length, so SDPA runs without
    grouped-query expansion: on CPU the grouped path is a parallel kernel whose thread start-up costs
    milliseconds on a busy machine, for a few microseconds of work.
    """
    heads, n_new, head_dim = query.shape
    kv_heads, total, _ = keys.shape
    groups = heads // kv_heads
    packed = query.reshape(kv_heads, groups * n_new, head_dim)
    mask = None
    if n_new > 1:  # query j (of each head in the group) sees every earlier token and itself
        visible = (
            torch.arange(total, device=query.device)[None, :]
            <= (start + torch.arange(n_new, device=query.device))[:, None]
        )
        mask = visible.repeat(groups, 1)
    attended = torch.nn.functional.scaled_dot_product_attention(
        packed[None], keys[None], values[None], attn_mask=mask, scale=scaling
    )
    return attended[0].reshape(heads, n_new, head_dim).transpose(0, 1)


_registered = False


def register_attention() -> None:
    """Make ``gravity_rows`` known to transformers (idempotent); its masks are SDPA's."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, rows_attention)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    _registered = True


def invariant_row_counts(in_features: int, out_features: int, limit: int = 64) -> list[int]:
    """Batch sizes (up to ``limit``) whose rows the BLAS computes exactly as at ``limit`` rows.

    Matrix-multiply kernels pick different code paths for different row counts (a vector path for one
    row, edge kernels for some others), and those paths round differently. Rows computed at any size in
    the returned set are bitwise equal to each other, whatever the other rows hold.
    """
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn((out_features, in_features), generator=gen)
    x = torch.randn((limit, in_features), generator=gen)
    with torch.inference_mode():
        reference = torch.nn.functional.linear(x, weight)
        sizes = []
        for m in range(1, limit + 1):
            rows = torch.nn.functional.linear(x[:m], weight)
            if torch.equal(rows, reference[:m]):
                sizes.append(m)
    return sizes
