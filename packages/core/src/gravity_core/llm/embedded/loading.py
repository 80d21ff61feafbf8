"""Loading the base model and its tokenizer once, with what every other part needs to know about them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from gravity_core.config import LLMEndpoint
from gravity_core.llm.embedded import packed as packing
from gravity_core.llm.embedded.device import pick_device, pick_dtype
from gravity_core.llm.models import quiet_weight_loading, resolve_model_path
from gravity_core.logging import get_logger

log = get_logger(__name__)


@dataclass
class LoadedModel:
    name: str
    path: str
    tokenizer: Any
    model: Any  # the plain causal LM (adapters wrap it, see adapters.py)
    device: str
    context_window: int
    eos_ids: list[int]
    # linear layers run on oneDNN with pre-packed weights (packed.py); adapters are packed as they load
    packed: bool = False


def load(endpoint: LLMEndpoint) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # 0 keeps PyTorch's own choice (OMP_NUM_THREADS when set — `gravity demo` gives each co-located service its
    # share that way — else every core): a fixed fraction here starved services that compute alone.
    if endpoint.threads and torch.get_num_threads() != endpoint.threads:
        torch.set_num_threads(endpoint.threads)
    threads = torch.get_num_threads()
    path = resolve_model_path(endpoint.model)
    device = pick_device(endpoint.device)
    dtype = pick_dtype(endpoint.dtype, device)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with quiet_weight_loading():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    torch.nn.Module.to(model, torch.device(device))  # transformers types its own .to() wrapper wrongly
    model.eval()
    packed = packing.supported(model)
    if packed:
        packing.pack_linears(model)
    context_window = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    log.info(
        "embedded_model_loaded",
        model=endpoint.model,
        path=path,
        device=device,
        dtype=str(dtype),
        packed_linears=packed,
        threads=threads,
        seconds=round(time.perf_counter() - started, 2),
    )
    return LoadedModel(
        endpoint.model, path, tokenizer, model, device, context_window, stop_token_ids(tokenizer), packed
    )


def stop_token_ids(tokenizer: Any) -> list[int]:
    """The end-of-sequence ids of the tokenizer and the usual end-of-turn tokens of chat models."""
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    for tok in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>"):
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid >= 0:
            ids.add(tid)
    return sorted(ids)
