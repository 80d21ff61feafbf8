"""Loading the base model and its tokenizer for training, on the hardware preflight picked."""

from __future__ import annotations

from typing import Any

from gravity_trainer.preflight import Hardware, check_tokenizer


def load_tokenizer(base_model: str) -> Any:
    """The base model's tokenizer, checked for a chat template, with a pad token."""
    from transformers import AutoTokenizer

    from gravity_core.llm.models import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(base_model))
    check_tokenizer(tokenizer, base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, hardware: Hardware) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from gravity_core.llm.models import quiet_weight_loading

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[hardware.precision]
    kwargs: dict[str, Any] = {"dtype": dtype}
    if hardware.quantize_4bit:
        from accelerate import PartialState
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": PartialState().local_process_index}
    with quiet_weight_loading():
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
