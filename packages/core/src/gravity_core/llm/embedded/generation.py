"""Text generation on the embedded model: batched (micro-batches of similar lengths), streamed, and with
per-token log-probabilities (for the stand-in OpenAI server)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import torch

from gravity_core.llm.embedded.adapters import AdapterSet
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
    ) -> None:
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.adapters = adapters
        self.prompter = prompter
        self.lock = lock
        self.usage = usage
        self.max_batch_size = max(1, max_batch_size)

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        names = resolve_adapters(adapters, len(conversations))
        for name in set(names):
            self.adapters.check(name)
        prompts = [self.prompter.prompt(c, params.max_tokens) for c in conversations]
        # Similar lengths together waste less padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i][0]))
        results: list[Completion | None] = [None] * len(prompts)
        for start in range(0, len(order), self.max_batch_size):
            idx = order[start : start + self.max_batch_size]
            outs = self._generate([prompts[i][0] for i in idx], params, [names[i] for i in idx])
            for i, out in zip(idx, outs, strict=True):
                out.truncated_prompt = prompts[i][1]
                results[i] = out
        return [r for r in results if r is not None]

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

    def _generate(
        self, prompts: list[str], params: GenerationParams, adapters: list[str | None]
    ) -> list[Completion]:
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.loaded.device
        )
        kwargs = self.kwargs(params)
        distinct = set(adapters)
        with self.lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            if len(distinct) > 1:
                scope: Any = nullcontext()
                kwargs.update(self.adapters.routing(adapters))
            else:
                scope = self.adapters.scope(next(iter(distinct)))
            with scope:
                out = self.adapters.model.generate(**enc, **kwargs)
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        results = []
        for row, prompt_mask, adapter in zip(new_tokens, enc["attention_mask"], adapters, strict=True):
            ids = row.tolist()
            finish = "length"
            for k, t in enumerate(ids):
                if t in self.loaded.eos_ids:
                    ids, finish = ids[:k], "stop"
                    break
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            text, stopped = apply_stop(text, params.stop)
            prompt_tokens = int(prompt_mask.sum())
            self.usage.add(prompt_tokens, len(ids))
            results.append(
                Completion(
                    text.strip(),
                    prompt_tokens,
                    len(ids),
                    self.loaded.name,
                    adapter,
                    "stop" if stopped else finish,
                )
            )
        return results

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
        from transformers import TextIteratorStreamer

        self.adapters.check(adapter)
        prompt, truncated = self.prompter.prompt(messages, params.max_tokens)
        enc = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(self.loaded.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self.kwargs(params)
        errors: list[BaseException] = []
        generated: list[Any] = []

        def run() -> None:
            try:
                with self.lock, torch.inference_mode(), self.adapters.scope(adapter):
                    if params.seed is not None:
                        torch.manual_seed(params.seed)
                    generated.append(self.adapters.model.generate(**enc, streamer=streamer, **kwargs))
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, name="embedded-stream", daemon=True)
        thread.start()
        text = ""
        for piece in streamer:
            if piece:
                text += piece
                yield StreamEvent(delta=piece)
        thread.join()
        if errors:
            raise errors[0]
        new_ids = generated[0][0, enc["input_ids"].shape[1] :].tolist() if generated else []
        completion_tokens = sum(
            1 for t in new_ids if t not in self.loaded.eos_ids and t != self.tokenizer.pad_token_id
        )
        prompt_tokens = int(enc["input_ids"].shape[1])
        self.usage.add(prompt_tokens, completion_tokens)
        final_text, stopped = apply_stop(text, params.stop)
        ended = stopped or any(t in self.loaded.eos_ids for t in new_ids)
        yield StreamEvent(
            final=Completion(
                final_text.strip(),
                prompt_tokens,
                completion_tokens,
                self.loaded.name,
                adapter,
                "stop" if ended else "length",
                truncated_prompt=truncated,
            )
        )


def apply_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    hits = [text.find(s) for s in stops if s and s in text]
    if not hits:
        return text, False
    return text[: min(hits)], True
