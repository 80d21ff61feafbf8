"""Text generation on the embedded model: every call joins the continuous-batching engine (engine.py), streamed
or not; per-token log-probabilities (for the stand-in OpenAI server) use transformers' generate."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from gravity_core.llm.embedded.adapters import AdapterSet
from gravity_core.llm.embedded.engine import ContinuousEngine, Handle
from gravity_core.llm.embedded.loading import LoadedModel
from gravity_core.llm.embedded.prompting import Prompter
from gravity_core.llm.types import (
    Completion,
    Conversation,
    GenerationParams,
    StreamEvent,
    Usage,
    resolve_adapters,
)


class Generator:
    def __init__(
        self,
        loaded: LoadedModel,
        adapters: AdapterSet,
        prompter: Prompter,
        lock: threading.RLock,
        usage: Usage,
        max_batch_size: int,
        prefix_cache_bytes: int = 256 << 20,
    ) -> None:
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.adapters = adapters
        self.prompter = prompter
        self.lock = lock
        self.usage = usage
        self.max_batch_size = max(1, max_batch_size)
        self.engine = ContinuousEngine(
            loaded, adapters, lock, usage, self.max_batch_size, prefix_cache_bytes=prefix_cache_bytes
        )

    def _encode(self, conversation: Conversation, params: GenerationParams) -> tuple[list[int], bool]:
        prompt, truncated = self.prompter.prompt(conversation, params.max_tokens)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return list(ids), truncated

    def submit(
        self,
        conversation: Conversation,
        params: GenerationParams,
        adapter: str | None = None,
        on_delta: Callable[[str], None] | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> Handle:
        """Queue one conversation on the continuous-batching engine; it joins the running batch."""
        self.adapters.check(adapter)
        ids, truncated = self._encode(conversation, params)
        return self.engine.submit(ids, params, adapter, truncated, on_delta, on_done)

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        names = resolve_adapters(adapters, len(conversations))
        for name in set(names):
            self.adapters.check(name)
        # encode every prompt before queuing any, so a bad one costs the others nothing
        encoded = [self._encode(c, params) for c in conversations]
        handles = [
            self.engine.submit(ids, params, name, truncated)
            for (ids, truncated), name in zip(encoded, names, strict=True)
        ]
        try:
            return [h.result() for h in handles]
        finally:
            for h in handles:
                if not h.done:
                    h.cancel()

    def kwargs(self, params: GenerationParams) -> dict[str, Any]:
        """generate() arguments for ``params``: greedy or sampled, stopping at any end-of-turn token."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.loaded.eos_ids,
        }
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=None)
        return kwargs

    def chat_with_logprobs(
        self, messages: Conversation, params: GenerationParams, adapter: str | None = None, top_k: int = 5
    ) -> tuple[Completion, list[tuple[str, float, list[tuple[str, float]]]]]:
        """Generate one completion and return, per generated token, (token, logprob, top-k alternatives)."""
        self.adapters.check(adapter)
        prompt, truncated = self.prompter.prompt(messages, params.max_tokens)
        enc = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(self.loaded.device)
        kwargs = self.kwargs(params)
        with self.lock, torch.inference_mode(), self.adapters.scope(adapter):
            if params.seed is not None:
                torch.manual_seed(params.seed)
            out = self.adapters.model.generate(
                **enc, **kwargs, output_logits=True, return_dict_in_generate=True
            )
        ids = out.sequences[0, enc["input_ids"].shape[1] :].tolist()
        tokens: list[tuple[str, float, list[tuple[str, float]]]] = []
        finish = "length"
        for step, tid in enumerate(ids):
            if tid in self.loaded.eos_ids:
                finish = "stop"
                break
            logprobs = torch.log_softmax(out.logits[step][0].float(), dim=-1)
            top = torch.topk(logprobs, k=max(1, top_k))
            alternatives = [
                (self.tokenizer.decode([int(i)]), float(v))
                for v, i in zip(top.values, top.indices, strict=True)
            ]
            tokens.append((self.tokenizer.decode([tid]), float(logprobs[tid]), alternatives))
        text = "".join(t for t, _, _ in tokens)
        prompt_tokens = int(enc["input_ids"].shape[1])
        self.usage.add(prompt_tokens, len(tokens))
        completion = Completion(
            text.strip(),
            prompt_tokens,
            len(tokens),
            self.loaded.name,
            adapter,
            finish,
            truncated_prompt=truncated,
        )
        return completion, tokens

    def stream_chat(
        self, messages: Conversation, params: GenerationParams, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        """Text pieces as the running batch produces them, then the completion (the same text)."""
        pieces: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        handle = self.submit(messages, params, adapter, on_delta=pieces.put, on_done=lambda: pieces.put(None))
        try:
            while (piece := pieces.get()) is not None:
                yield StreamEvent(delta=piece)
            yield StreamEvent(final=handle.result())
        finally:
            if not handle.done:
                handle.cancel()


def apply_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    hits = [text.find(s) for s in stops if s and s in text]
    if not hits:
        return text, False
    return text[: min(hits)], True
