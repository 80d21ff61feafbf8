"""The LLM client contract shared by the embedded and OpenAI-compatible backends."""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from gravity_core.errors import Unsupported

Message = dict[str, str]
Conversation = Sequence[Message]


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    adapter: str | None = None
    finish_reason: str = "stop"
    cached: bool = False
    # The prompt did not fit the context window and was shortened (see fit_messages).
    truncated_prompt: bool = False


@dataclass
class StreamEvent:
    """A piece of streamed text; the last event carries the full completion."""

    delta: str = ""
    final: Completion | None = None


@dataclass
class ChoiceScores:
    """How likely the model is to answer with each of a fixed set of choices."""

    choices: tuple[str, ...]
    probabilities: tuple[float, ...]
    # "logprobs": read from token log-probabilities; "parsed": from generated text (probability 1 for the
    # answer found); unusable results have all-zero probabilities and usable=False.
    method: Literal["logprobs", "parsed"]
    prompt_tokens: int = 0
    usable: bool = True
    raw_text: str | None = None
    # Each choice's summed token log-probability, before normalising over the choices, when the backend has
    # them for whole choices (the embedded scorer); empty otherwise. A ratio of two such sums survives where
    # the normalised probabilities underflow (long multi-token choices, as preference pairs are).
    logprobs: tuple[float, ...] = ()

    @property
    def best(self) -> str | None:
        if not self.usable or not self.probabilities:
            return None
        return self.choices[max(range(len(self.choices)), key=lambda i: self.probabilities[i])]

    @property
    def best_probability(self) -> float:
        return max(self.probabilities) if self.usable and self.probabilities else 0.0

    def probability(self, choice: str) -> float:
        return self.probabilities[self.choices.index(choice)]

    def expected(self, values: Sequence[float]) -> float:
        """Expected value when choice i is worth values[i] (e.g. a Likert scale)."""
        if not self.usable:
            return math.nan
        return float(sum(p * v for p, v in zip(self.probabilities, values, strict=True)))

    @classmethod
    def unusable(cls, choices: Sequence[str], raw_text: str | None, prompt_tokens: int = 0) -> ChoiceScores:
        return cls(tuple(choices), tuple(0.0 for _ in choices), "parsed", prompt_tokens, False, raw_text)


@dataclass(frozen=True)
class ChoiceRequest:
    messages: Conversation
    choices: tuple[str, ...]
    # Text the assistant's answer starts with before the choice (e.g. "Answer: ").
    prefill: str = ""


@dataclass
class Usage:
    """Running token counters, for benchmarks and summaries."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_calls: int = 0

    def add(self, prompt: int, completion: int = 0, cached: bool = False) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.calls += 1
        self.cached_calls += int(cached)


@dataclass
class ModelInfo:
    name: str
    backend: str
    context_window: int
    adapters: list[str] = field(default_factory=list)
    supports_logprobs: bool = True


class LLMClient(abc.ABC):
    """Chat completion, batched completion, streaming and choice scoring over one model.

    ``adapter`` selects a LoRA adapter previously loaded with :meth:`load_adapter` (embedded) or served
    under that model name (vLLM); ``None`` means the base model.
    """

    usage: Usage

    @property
    @abc.abstractmethod
    def info(self) -> ModelInfo: ...

    def chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Completion:
        """One conversation: a batch of one, unless the backend has a cheaper single call."""
        return self.chat_batch([messages], params, adapter)[0]

    @abc.abstractmethod
    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        """Complete many conversations; ``adapters`` is one per conversation or one for all."""

    @abc.abstractmethod
    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]: ...

    @abc.abstractmethod
    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores: ...

    def score_choices_batch(
        self, requests: Sequence[ChoiceRequest], adapter: str | None = None
    ) -> list[ChoiceScores]:
        return [
            self.score_choices(r.messages, r.choices, adapter=adapter, prefill=r.prefill) for r in requests
        ]

    def score_choices_shared_prefix(
        self,
        messages: Conversation,
        suffixes: Sequence[str],
        choices: Sequence[str],
        adapter: str | None = None,
        prefill: str = "",
    ) -> list[ChoiceScores]:
        """Score ``choices`` for many questions that share one long context.

        The last message of ``messages`` must be the user turn; each suffix is appended to its content.
        Backends that can reuse the encoded prefix (the embedded KV cache, vLLM's prefix cache) make this
        far cheaper than independent calls; the result is the same.
        """
        base = list(messages)
        last = base[-1]
        out = []
        for suffix in suffixes:
            convo = [*base[:-1], {**last, "content": last["content"] + suffix}]
            out.append(self.score_choices(convo, choices, adapter=adapter, prefill=prefill))
        return out

    def count_tokens(self, text: str) -> int:
        """Token count of ``text`` (an estimate where the backend has no tokenizer)."""
        return max(1, len(text) // 4)

    def load_adapter(self, name: str, path: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot load adapters")

    def unload_adapter(self, name: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot unload adapters")

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


def resolve_adapters(adapters: Sequence[str | None] | str | None, n: int) -> list[str | None]:
    if adapters is None or isinstance(adapters, str):
        return [adapters] * n
    adapters = list(adapters)
    if len(adapters) != n:
        raise ValueError(f"got {len(adapters)} adapters for {n} conversations")
    return adapters


def parse_choice(text: str, choices: Sequence[str]) -> str | None:
    """The choice a free-text answer names: the earliest whole-word match, longest choice first on ties."""
    lowered = text.lower()
    best: tuple[int, int, str] | None = None
    for choice in choices:
        c = choice.lower().strip()
        if not c:
            continue
        start = 0
        while True:
            i = lowered.find(c, start)
            if i < 0:
                break
            before = lowered[i - 1] if i > 0 else " "
            after = lowered[i + len(c)] if i + len(c) < len(lowered) else " "
            if not before.isalnum() and not after.isalnum():
                key = (i, -len(c), choice)
                if best is None or key < best:
                    best = key
                break
            start = i + 1
    return best[2] if best else None
