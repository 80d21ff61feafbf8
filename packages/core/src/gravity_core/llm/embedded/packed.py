"""fp32 linear layers on CPU through oneDNN with weights packed once, for serving.

Decoding multiplies a handful of rows (one per running sequence) by every weight matrix of the model. The
default CPU path (MKL sgemm) re-packs the weight for each of those small products and, with two threads on a
busy machine, spends most of a step synchronising them: measured here, 210 products of one SmolLM2 decode
step at 8 rows took 470 ms that way and 74 ms with oneDNN on weights packed ahead of time. The packed
product also gives each row the same bits whatever the number of rows (checked for 1..64), which is what
keeps continuous batching's greedy outputs identical to one-at-a-time ones (see rows.py).

Each ``nn.Linear`` keeps its weight (peft reads its shape; the embedding may be tied to it); the packed copy
sits beside it and serves inference. Autograd falls back to the plain product, so nothing here can train.
"""

from __future__ import annotations

import types
from typing import Any

import torch

from gravity_core.logging import get_logger

log = get_logger(__name__)
ROWS_HINT = 8  # the batch size oneDNN chooses its blocked layout for; any row count works


def supported(model: Any) -> bool:
    """oneDNN can serve this model's linear layers: fp32 on CPU, and the packed ops exist and agree."""
    try:
        parameter = next(model.parameters())
    except StopIteration:
        return False
    if parameter.device.type != "cpu" or parameter.dtype != torch.float32:
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        with torch.inference_mode():
            weight = torch.randn(16, 32)
            x = torch.randn(3, 32)
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, ROWS_HINT)
            out = torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")
        return bool(torch.allclose(out, x @ weight.T, atol=1e-4))
    except (RuntimeError, AttributeError) as exc:
        log.info("packed_linear_unavailable", reason=str(exc)[:200])
        return False


def pack_linears(model: Any) -> int:
    """Pack every linear layer of ``model`` not packed yet (after loading, and after each new adapter)."""
    packed = 0
    with torch.inference_mode():
        for module in model.modules():
            if not isinstance(module, torch.nn.Linear) or hasattr(module, "_gravity_packed"):
                continue
            module._gravity_packed = torch.ops.mkldnn._reorder_linear_weight(
                module.weight.detach(), ROWS_HINT
            )
            module.forward = types.MethodType(_packed_forward, module)  # type: ignore[method-assign]
            packed += 1
    return packed


def _packed_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() or x.dtype != torch.float32:
        return torch.nn.functional.linear(x, self.weight, self.bias)
    bias = None if self.bias is None else self.bias.detach()
    return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self._gravity_packed, bias, "none", [], "")
