"""Generator test fixtures: sample profiles, really trained tiny adapters, and settings that use them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gravity.v1 import profile_pb2, training_pb2
from gravity_core.adapters import ADAPTER_META, write_adapter_ref
from gravity_core.artifacts import sha256_dir
from gravity_core.catalog import Catalog
from gravity_core.config import Settings, load_settings
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.llm import (
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    ModelInfo,
    StreamEvent,
    Usage,
)
from gravity_core.llm.types import resolve_adapters
from gravity_core.names import method_fields
from gravity_core.proto_io import write_jsonl
from gravity_core.service import RunningService
from gravity_generator.quick_profiles import quick_profiles

# A few (prompt, completion) examples per adapter method: enough for real optimizer steps that move the
# LoRA weights off their initialisation, small enough to train in seconds on a CPU.
TRAINING_TEXTS = {
    "user-sft": [
        (
            "You are a senior female from USA. You recently read the book: The Salt Ledger.",
            "A gripping read.",
        ),
        ("You are a young male from Japan. You recently read the book: Ember Crown.", "I loved the dragons."),
    ],
    "pref-align": [
        ("You are a middle-aged female from Brazil. Describe a cozy mystery.", "A warm, witty puzzle."),
        ("You are a young female from India. Describe a romance.", "Two hearts, one city, no rules."),
    ],
    "gravity": [
        (
            "You value family and tradition. Describe a historical novel.",
            "A family's courage across a century.",
        ),
        (
            "You value adventure and freedom. Describe a fantasy epic.",
            "Break every map and ride into the storm.",
        ),
    ],
}


def train_adapters(root: Path, examples: dict[str, list[tuple[str, str]]], steps: int = 2) -> dict[str, Path]:
    """One LoRA adapter per method on SmolLM2, each after ``steps`` AdamW steps of LM loss on its examples."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gravity_core.llm.models import resolve_model_path

    path = resolve_model_path("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(path)
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    out = {}
    for seed, (method, pairs) in enumerate(examples.items()):
        torch.manual_seed(seed)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
        model = get_peft_model(base, config)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
        texts = [f"{prompt}\n{completion}{tokenizer.eos_token}" for prompt, completion in pairs]
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        model.train()
        for _ in range(steps):
            model(**batch, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.save_pretrained(str(root / method))
        base = model.unload()  # the plain base model again, for the next adapter
        out[method] = root / method
    return out


def adapter_ref(
    directory: Path, method: str, adapter_id: str, created_at_ms: int | None = None
) -> training_pb2.AdapterRef:
    """Write gravity_adapter.json for ``directory`` (its checksum leaves that file out) and return the ref."""
    ref = training_pb2.AdapterRef(
        adapter_id=adapter_id,
        **method_fields(method),
        recipe={"gravity": "gravity-dpo"}.get(method, method),
        uri=directory.resolve().as_uri(),
        sha256=sha256_dir(directory, exclude=(ADAPTER_META,)),
        base_model="smollm2-135m",
        created_at_ms=created_at_ms or int(time.time() * 1000),
    )
    write_adapter_ref(directory, ref)
    return ref


class FakeLLM(LLMClient):
    """Echoes the last user message; "boom" in a prompt fails its batch; each batch takes ``delay_s``."""

    def __init__(self, delay_s: float = 0.05, backend: str = "embedded") -> None:
        self.delay_s = delay_s
        self.backend = backend
        self.usage = Usage()
        self.batches: list[list[tuple[str, str | None]]] = []
        self.loaded: dict[str, str] = {}
        self.unloaded: list[str] = []
        self.fail_loads: set[str] = set()
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("fake", self.backend, 4096, sorted(self.loaded))

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        names = resolve_adapters(adapters, len(conversations))
        prompts = [c[-1]["content"] for c in conversations]
        with self._lock:
            self.batches.append(list(zip(prompts, names, strict=True)))
        time.sleep(self.delay_s)
        for name in names:
            if name is not None and name not in self.loaded:
                raise NotFound("adapter", f"{name} is not loaded")
        if any("boom" in p for p in prompts):
            raise InvalidInput("messages", "boom")
        return [
            Completion(f"out:{p}", len(p.split()), 3, "fake", a) for p, a in zip(prompts, names, strict=True)
        ]

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        completion = self.chat(messages, params, adapter)
        for word in completion.text.split(" "):
            yield StreamEvent(delta=word + " ")
        yield StreamEvent(final=completion)

    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        return ChoiceScores(tuple(choices), tuple(1.0 / len(choices) for _ in choices), "logprobs")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def load_adapter(self, name: str, path: str) -> None:
        if name in self.fail_loads:
            raise RuntimeError(f"size mismatch loading {name}")
        self.loaded[name] = path

    def unload_adapter(self, name: str) -> None:
        del self.loaded[name]
        self.unloaded.append(name)


@pytest.fixture
def fake_llm() -> Callable[..., FakeLLM]:
    """A scripted LLM for fast unit tests of batching and adapter bookkeeping (the real model is tested
    elsewhere)."""
    return FakeLLM


@pytest.fixture(scope="session")
def make_adapter_ref() -> Callable[..., training_pb2.AdapterRef]:
    return adapter_ref


@pytest.fixture(scope="session")
def trained_adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """method -> adapter directory (PEFT files + gravity_adapter.json) under one adapters root."""
    root = tmp_path_factory.mktemp("adapters")
    # On a busy CPU, torch driven from the main thread is several times slower than from a worker thread.
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(train_adapters, root, TRAINING_TEXTS).result()
    for method, directory in out.items():
        adapter_ref(directory, method, f"{method}-test")
    return out


@pytest.fixture(scope="session")
def catalog(sample_files: dict[str, Path]) -> Catalog:
    return Catalog.open(sample_files["meta_Books.jsonl"])


@pytest.fixture(scope="session")
def profiles(sample_files: dict[str, Path], catalog: Catalog) -> list[profile_pb2.UserProfile]:
    return quick_profiles(sample_files["Books.jsonl"], catalog, sample_files["demographics.csv"])


@pytest.fixture(scope="session")
def target_book(
    profiles: list[profile_pb2.UserProfile], catalog: Catalog
) -> tuple[profile_pb2.UserProfile, Any]:
    """The first sample reader and their first evaluation book."""
    from gravity_core.targets import select_targets

    profile = profiles[0]
    return profile, select_targets(profile, catalog, 1)[0]


@pytest.fixture(scope="session")
def profiles_file(tmp_path_factory: pytest.TempPathFactory, profiles: list[profile_pb2.UserProfile]) -> Path:
    path = tmp_path_factory.mktemp("profiles") / "profiles.jsonl"
    write_jsonl(profiles, path)
    return path


@pytest.fixture
def generator_settings(
    make_settings: Callable[..., Settings], sample_files: dict[str, Path], profiles_file: Path
) -> Callable[..., Settings]:
    """Settings for a generator on the sample: small outputs, no topics unless a broker is given."""

    def build(broker: Any = None, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "generator.meta_path": str(sample_files["meta_Books.jsonl"]),
            "generator.profiles_path": str(profiles_file),
            "generator.follow_topics": broker is not None,
            "generator.max_new_tokens": 8,
        }
        base.update(overrides)
        return make_settings(broker=broker, **base)

    return build


@pytest.fixture(scope="session")
def generator(
    tmp_path_factory: pytest.TempPathFactory,
    sample_files: dict[str, Path],
    profiles_file: Path,
    trained_adapters: dict[str, Path],
) -> Iterator[RunningService]:
    """One embedded generator for the session: sample catalog and profiles, the three trained adapters,
    a 512-token context so truncation is cheap to provoke, 8 new tokens per description."""
    from gravity_core.grpc import make_channel, wait_for_serving
    from gravity_generator.service import start_generator

    tmp = tmp_path_factory.mktemp("generator")
    settings = load_settings(
        None,
        env={k: v for k, v in os.environ.items() if k == "GRAVITY_HOME"},
        overrides={
            "artifacts.root": str(tmp / "artifacts"),
            "cache.enabled": False,
            "logging.level": "WARNING",
            "generator.meta_path": str(sample_files["meta_Books.jsonl"]),
            "generator.profiles_path": str(profiles_file),
            "generator.adapters_dir": str(next(iter(trained_adapters.values())).parent),
            "generator.follow_topics": False,
            "generator.max_new_tokens": 8,
            "generator.context_window": 512,
            "grpc.health_port": 0,  # the operations port (/metrics) on any free port
        },
    )
    running = start_generator(settings)
    try:
        wait_for_serving(make_channel(running.target), timeout_s=600)
        yield running
    finally:
        running.stop()
