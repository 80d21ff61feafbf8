"""In-process backend on transformers + peft: the default for laptops, tests and the demo.

One instance holds one base model (loading.py). LoRA adapters are attached with peft and chosen per call
(adapters.py; a batch may mix adapters: peft routes each row to its adapter). Messages become model text
through the chat template, shortened to fit the context (prompting.py). Generation runs on a
continuous-batching engine (engine.py): calls from any thread join the running batch between decode steps,
streamed or not (generation.py); choice scoring shares an encoded prefix across questions (scoring.py).
Model calls are serialized with one lock: on CPU the matrix kernels already use every core, and batching
is where the throughput comes from.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

from gravity_core.config import LLMEndpoint
from gravity_core.llm.embedded.adapters import AdapterSet
from gravity_core.llm.embedded.engine import ContinuousEngine
from gravity_core.llm.embedded.generation import Generator
from gravity_core.llm.embedded.loading import load
from gravity_core.llm.embedded.prompting import Prompter
from gravity_core.llm.embedded.scoring import ChoiceScorer
from gravity_core.llm.types import (
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    ModelInfo,
    StreamEvent,
    Usage,
)
from gravity_core.logging import get_logger

log = get_logger(__name__)


class EmbeddedLLM(LLMClient):
    def __init__(self, endpoint: LLMEndpoint) -> None:
        self.endpoint = endpoint
        self.loaded = load(endpoint)
        self.usage = Usage()
        self._lock = threading.RLock()
        self._adapters = AdapterSet(self.loaded.model, pack=self.loaded.packed)
        self.prompter = Prompter(self.loaded.tokenizer, self.loaded.context_window, endpoint.model)
        parts = (self.loaded, self._adapters, self.prompter, self._lock, self.usage, endpoint.max_batch_size)
        self.generator = Generator(*parts, prefix_cache_bytes=endpoint.prefix_cache_mb << 20)
        self.scorer = ChoiceScorer(*parts, engine=self.generator.engine)

    # ------------------------------------------------------------------ info
    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.endpoint.model, "embedded", self.context_window, sorted(self._adapters.paths))

    @property
    def context_window(self) -> int:
        return self.loaded.context_window

    @property
    def tokenizer(self) -> Any:
        return self.loaded.tokenizer

    @property
    def base_model(self) -> Any:
        """The plain model underneath any adapters (for shape checks before an adapter is loaded)."""
        return self._adapters.base_model

    @property
    def reuse_prefix(self) -> bool:
        return self.scorer.reuse_prefix

    @reuse_prefix.setter
    def reuse_prefix(self, value: bool) -> None:
        self.scorer.reuse_prefix = value

    def count_tokens(self, text: str) -> int:
        return self.prompter.count_tokens(text)

    def render(self, messages: Conversation, add_generation_prompt: bool = True) -> str:
        return self.prompter.render(messages, add_generation_prompt)

    # --------------------------------------------------------------- adapters
    def load_adapter(self, name: str, path: str) -> None:
        """Attach the adapter at ``path`` as ``name``; each load is one hold (see AdapterSet)."""
        with self._lock:
            self._adapters.load(name, path)
            self.scorer.forget_prefix()
            self.generator.engine.forget_prefixes(name)
        log.info("adapter_loaded", adapter=name, path=path)

    def unload_adapter(self, name: str) -> None:
        """Drop one hold on ``name``; the adapter leaves the model with the last."""
        with self._lock:
            if not self._adapters.unload(name):
                return  # another owner in this process still serves it
            self.scorer.forget_prefix()
            self.generator.engine.forget_prefixes(name)

    @property
    def adapters(self) -> dict[str, str]:
        return self._adapters.paths

    # ------------------------------------------------------------- generation
    def _params(self, params: GenerationParams | None) -> GenerationParams:
        return params or GenerationParams(max_tokens=self.endpoint.max_tokens)

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        return self.generator.chat_batch(conversations, self._params(params), adapters)

    def chat_with_logprobs(
        self, messages: Conversation, params: GenerationParams, adapter: str | None = None, top_k: int = 5
    ) -> tuple[Completion, list[tuple[str, float, list[tuple[str, float]]]]]:
        return self.generator.chat_with_logprobs(messages, params, adapter, top_k)

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        return self.generator.stream_chat(messages, self._params(params), adapter)

    @property
    def engine(self) -> ContinuousEngine:
        """The continuous-batching engine (its ``stats`` show how full the running batch was)."""
        return self.generator.engine

    # ---------------------------------------------------------------- scoring
    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        return self.scorer.score_shared_prefix(messages, [""], choices, adapter=adapter, prefill=prefill)[0]

    def score_choices_shared_prefix(
        self,
        messages: Conversation,
        suffixes: Sequence[str],
        choices: Sequence[str],
        adapter: str | None = None,
        prefill: str = "",
    ) -> list[ChoiceScores]:
        return self.scorer.score_shared_prefix(messages, suffixes, choices, adapter=adapter, prefill=prefill)
