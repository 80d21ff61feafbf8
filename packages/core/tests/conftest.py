from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (untrained, randomly initialised) LoRA adapter for SmolLM2, saved in PEFT's format."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from gravity_core.llm.models import resolve_model_path

    base = AutoModelForCausalLM.from_pretrained(resolve_model_path("smollm2-135m"))
    model = get_peft_model(
        base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    out = tmp_path_factory.mktemp("adapter") / "tiny"
    model.save_pretrained(str(out))
    return out
