"""Where the embedded model runs and in which precision."""

from __future__ import annotations

import torch


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(requested: str, device: str) -> torch.dtype:
    if requested != "auto":
        return getattr(torch, requested)
    # bf16 is ~14x slower than fp32 on CPUs without native support; it is the right default on GPUs.
    return torch.bfloat16 if device.startswith("cuda") else torch.float32
