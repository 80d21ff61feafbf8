"""Helpers shared by the profiler tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

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

# Users of the bundled sample used across tests (see gravity_core/data/sample/README.md).
USA_GRANDMOTHER = "A4AAGP21LDRGDNU565734LZJFH9J"  # all demographics given
NO_GENDER = "A56DCMTNZ4Q3IZWIK5KKGNAA9MIA"  # gender missing
NO_AGE_NO_COUNTRY = "AZLVKSKBYNVMUIGNMS7C20SKNP4H"  # age and country missing
CASUAL = "AXUFZO6BRB0ASSQ72LKLFR94MV7P"  # 3 reviews


class ScriptedLLM(LLMClient):
    """A deterministic stand-in: choice scores from a hash of the prompt, canned summaries.

    ``unusable_when`` makes scoring return an unusable answer (as the OpenAI parse fallback does when the
    reply names no allowed label) for prompts containing that text; ``summary`` is the completion text.
    """

    def __init__(
        self, unusable_when: str | None = None, summary: str = "", backend: str = "embedded"
    ) -> None:
        self.usage = Usage()
        self.unusable_when = unusable_when
        self.summary = summary
        self.backend = backend
        self.prompts: list[str] = []

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("scripted", self.backend, 8192)

    def chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Completion:
        return self.chat_batch([messages], params)[0]

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Any = None,
    ) -> list[Completion]:
        out = []
        for convo in conversations:
            prompt = convo[-1]["content"]
            self.prompts.append(prompt)
            self.usage.add(len(prompt) // 4, 10)
            out.append(Completion(self.summary, len(prompt) // 4, 10, "scripted", finish_reason="stop"))
        return out

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        yield StreamEvent(final=self.chat(messages, params))

    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        prompt = messages[-1]["content"]
        self.prompts.append(prompt)
        self.usage.add(len(prompt) // 4)
        if self.unusable_when and self.unusable_when in prompt:
            return ChoiceScores.unusable(choices, "I am not sure, it depends.")
        digest = hashlib.sha256(prompt.encode()).digest()
        weights = [1.0 + digest[i % len(digest)] for i in range(len(choices))]
        total = sum(weights)
        return ChoiceScores(tuple(choices), tuple(w / total for w in weights), "logprobs", len(prompt) // 4)
