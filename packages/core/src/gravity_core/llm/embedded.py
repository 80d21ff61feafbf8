"""In-process backend on transformers + peft: the default for laptops, tests and the demo.

One instance holds one base model; LoRA adapters are attached with peft and chosen per call (a batch may
mix adapters: peft routes each row to its adapter). Calls are serialized with a lock: on CPU the matrix
kernels already use every core, and batching is where the throughput comes from.
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from gravity_core.config import LLMEndpoint
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.llm.models import resolve_model_path
from gravity_core.llm.types import (
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    ModelInfo,
    StreamEvent,
    Usage,
    resolve_adapters,
)
from gravity_core.logging import get_logger

log = get_logger(__name__)

_BASE = "__base__"  # peft's name for "no adapter" in mixed-adapter batches
_TRUNCATION_MARK = " [...] "


def _pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def _pick_dtype(requested: str, device: str) -> torch.dtype:
    if requested != "auto":
        return getattr(torch, requested)
    # bf16 is ~14x slower than fp32 on CPUs without native support; it is the right default on GPUs.
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


class EmbeddedLLM(LLMClient):
    def __init__(self, endpoint: LLMEndpoint) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.endpoint = endpoint
        self.path = resolve_model_path(endpoint.model)
        self.device = _pick_device(endpoint.device)
        dtype = _pick_dtype(endpoint.dtype, self.device)
        started = time.perf_counter()
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.base_model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).to(self.device)
        self.base_model.eval()
        self.model: Any = self.base_model
        self._adapters: dict[str, str] = {}
        self._lock = threading.RLock()
        self.usage = Usage()
        cfg = self.base_model.config
        self.context_window = int(getattr(cfg, "max_position_embeddings", 2048) or 2048)
        self._eos_ids = self._stop_token_ids()
        # Choice scoring keeps the last encoded prefix (one entry) and encodes only what a new call adds to
        # it, like vLLM's prefix caching: consecutive calls over one long context (a reader's review
        # history asked several kinds of question) pay for that context once. Set False to measure the
        # naive cost.
        self.reuse_prefix = True
        self._prefix_kv: _PrefixKV | None = None
        # Models whose forward takes logits_to_keep skip the vocabulary projection where no logit is read.
        self._keeps_logits = "logits_to_keep" in inspect.signature(self.base_model.forward).parameters
        # Score choice rows packed into one sequence over a shared prefix cache (falls back to a padded
        # batch with a cache copy per row for architectures that reject custom attention masks).
        self._pack_rows = True
        self._name = endpoint.model
        log.info(
            "embedded_model_loaded",
            model=endpoint.model,
            path=self.path,
            device=self.device,
            dtype=str(dtype),
            seconds=round(time.perf_counter() - started, 2),
        )

    # ------------------------------------------------------------------ info
    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self._name, "embedded", self.context_window, sorted(self._adapters))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _stop_token_ids(self) -> list[int]:
        ids = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        for tok in ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>"):
            tid = self.tokenizer.convert_tokens_to_ids(tok)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid >= 0:
                ids.add(tid)
        return sorted(ids)

    # --------------------------------------------------------------- adapters
    def load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel

        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise NotFound("adapter", f"{path} has no adapter_config.json")
        with self._lock:
            if name in self._adapters:
                self.model.delete_adapter(name)
            if self.model is self.base_model:
                self.model = PeftModel.from_pretrained(self.base_model, path, adapter_name=name)
            else:
                self.model.load_adapter(path, adapter_name=name)
            self.model.eval()
            self._adapters[name] = path
            self._prefix_kv = None
        log.info("adapter_loaded", adapter=name, path=path)

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            if name not in self._adapters:
                raise NotFound("adapter", f"adapter {name!r} is not loaded")
            if len(self._adapters) == 1:
                # peft cannot run with zero adapters; take the LoRA layers out and go back to the plain model
                self.base_model = self.model.unload()
                self.model = self.base_model
                self.model.eval()
            else:
                self.model.delete_adapter(name)
            del self._adapters[name]
            self._prefix_kv = None

    @property
    def adapters(self) -> dict[str, str]:
        return dict(self._adapters)

    def _check_adapter(self, adapter: str | None) -> None:
        if adapter is not None and adapter not in self._adapters:
            raise NotFound(
                "adapter", f"adapter {adapter!r} is not loaded (loaded: {sorted(self._adapters) or 'none'})"
            )

    @contextmanager
    def _adapter_scope(self, adapter: str | None) -> Iterator[None]:
        """Run the model with one adapter active, or with adapters disabled for the base model."""
        self._check_adapter(adapter)
        if self.model is self.base_model:
            yield
        elif adapter is None:
            with self.model.disable_adapter():
                yield
        else:
            self.model.set_adapter(adapter)
            yield

    # ---------------------------------------------------------------- prompts
    def render(self, messages: Conversation, add_generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def fit_messages(self, messages: Conversation, budget: int) -> tuple[list[dict[str, str]], bool]:
        """Shorten the longest non-system message (from its middle) until the prompt fits ``budget`` tokens."""
        msgs = [dict(m) for m in messages]
        for _ in range(8):
            overflow = self.count_tokens(self.render(msgs)) - budget
            if overflow <= 0:
                return msgs, _ != 0
            candidates = [i for i, m in enumerate(msgs) if m["role"] != "system"] or list(range(len(msgs)))
            i = max(candidates, key=lambda k: len(msgs[k]["content"]))
            ids = self.tokenizer(msgs[i]["content"], add_special_tokens=False)["input_ids"]
            cut = min(len(ids) - 2, overflow + 8)
            if cut <= 0:
                break
            keep_head = (len(ids) - cut) // 2
            keep_tail = len(ids) - cut - keep_head
            msgs[i]["content"] = (
                self.tokenizer.decode(ids[:keep_head])
                + _TRUNCATION_MARK
                + self.tokenizer.decode(ids[len(ids) - keep_tail :])
            )
        raise InvalidInput(
            "messages", f"prompt cannot be shortened to fit the {self.context_window}-token context"
        )

    def _prompt(self, messages: Conversation, max_new_tokens: int) -> tuple[str, bool]:
        msgs, truncated = self.fit_messages(messages, self.context_window - max_new_tokens)
        if truncated:
            log.warning("prompt_truncated", model=self._name, context_window=self.context_window)
        return self.render(msgs), truncated

    # ------------------------------------------------------------- generation
    def chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Completion:
        return self.chat_batch([messages], params, adapter)[0]

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        params = params or GenerationParams(max_tokens=self.endpoint.max_tokens)
        names = resolve_adapters(adapters, len(conversations))
        for name in set(names):
            self._check_adapter(name)
        prompts = [self._prompt(c, params.max_tokens) for c in conversations]
        # Similar lengths together waste less padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i][0]))
        results: list[Completion | None] = [None] * len(prompts)
        step = max(1, self.endpoint.max_batch_size)
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            outs = self._generate([prompts[i][0] for i in idx], params, [names[i] for i in idx])
            for i, out in zip(idx, outs, strict=True):
                out.truncated_prompt = prompts[i][1]
                results[i] = out
        return [r for r in results if r is not None]

    def _generation_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self._eos_ids,
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
            self.device
        )
        kwargs = self._generation_kwargs(params)
        distinct = set(adapters)
        with self._lock, torch.inference_mode():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            if len(distinct) > 1:
                scope: Any = nullcontext()
                kwargs["adapter_names"] = [a or _BASE for a in adapters]
            else:
                scope = self._adapter_scope(next(iter(distinct)))
            with scope:
                out = self.model.generate(**enc, **kwargs)
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        results = []
        for row, prompt_mask, adapter in zip(new_tokens, enc["attention_mask"], adapters, strict=True):
            ids = row.tolist()
            finish = "length"
            for k, t in enumerate(ids):
                if t in self._eos_ids:
                    ids, finish = ids[:k], "stop"
                    break
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            text, stopped = _apply_stop(text, params.stop)
            prompt_tokens = int(prompt_mask.sum())
            self.usage.add(prompt_tokens, len(ids))
            results.append(
                Completion(
                    text.strip(), prompt_tokens, len(ids), self._name, adapter, "stop" if stopped else finish
                )
            )
        return results

    def chat_with_logprobs(
        self, messages: Conversation, params: GenerationParams, adapter: str | None = None, top_k: int = 5
    ) -> tuple[Completion, list[tuple[str, float, list[tuple[str, float]]]]]:
        """Generate one completion and return, per generated token, (token, logprob, top-k alternatives)."""
        self._check_adapter(adapter)
        prompt, truncated = self._prompt(messages, params.max_tokens)
        enc = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(self.device)
        kwargs = self._generation_kwargs(params)
        with self._lock, torch.inference_mode(), self._adapter_scope(adapter):
            if params.seed is not None:
                torch.manual_seed(params.seed)
            out = self.model.generate(**enc, **kwargs, output_logits=True, return_dict_in_generate=True)
        ids = out.sequences[0, enc["input_ids"].shape[1] :].tolist()
        tokens: list[tuple[str, float, list[tuple[str, float]]]] = []
        finish = "length"
        for step, tid in enumerate(ids):
            if tid in self._eos_ids:
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
        return Completion(
            text.strip(), prompt_tokens, len(tokens), self._name, adapter, finish, truncated_prompt=truncated
        ), tokens

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        from transformers import TextIteratorStreamer

        params = params or GenerationParams(max_tokens=self.endpoint.max_tokens)
        self._check_adapter(adapter)
        prompt, truncated = self._prompt(messages, params.max_tokens)
        enc = self.tokenizer([prompt], return_tensors="pt", add_special_tokens=False).to(self.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generation_kwargs(params)
        errors: list[BaseException] = []
        generated: list[Any] = []

        def run() -> None:
            try:
                with self._lock, torch.inference_mode(), self._adapter_scope(adapter):
                    if params.seed is not None:
                        torch.manual_seed(params.seed)
                    generated.append(self.model.generate(**enc, streamer=streamer, **kwargs))
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
            1 for t in new_ids if t not in self._eos_ids and t != self.tokenizer.pad_token_id
        )
        prompt_tokens = int(enc["input_ids"].shape[1])
        self.usage.add(prompt_tokens, completion_tokens)
        final_text, _ = _apply_stop(text, params.stop)
        yield StreamEvent(
            final=Completion(
                final_text.strip(),
                prompt_tokens,
                completion_tokens,
                self._name,
                adapter,
                truncated_prompt=truncated,
            )
        )

    # ---------------------------------------------------------------- scoring
    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        return self.score_choices_shared_prefix(messages, [""], choices, adapter=adapter, prefill=prefill)[0]

    def score_choices_shared_prefix(
        self,
        messages: Conversation,
        suffixes: Sequence[str],
        choices: Sequence[str],
        adapter: str | None = None,
        prefill: str = "",
    ) -> list[ChoiceScores]:
        """Encode the shared context once (KV cache), then score every (suffix, choice) row against it."""
        if not choices:
            raise InvalidInput("choices", "at least one choice is required")
        if not suffixes:
            return []
        self._check_adapter(adapter)
        longest_suffix = max(self.count_tokens(s) for s in suffixes)
        longest_choice = max(self.count_tokens(c) for c in choices)
        base = list(messages)
        base, _ = self.fit_messages(base, self.context_window - longest_suffix - longest_choice - 16)
        last = base[-1]
        texts = [
            self.render([*base[:-1], {**last, "content": last["content"] + s}]) + prefill for s in suffixes
        ]
        shared = _shared_prefix(texts)
        prefix_ids = self.tokenizer(shared, add_special_tokens=False)["input_ids"]
        # A row feeds ``ids`` after the cached prefix and reads, for each listed choice, the log-probabilities
        # of its tokens at the given positions. Choices that are one token after the question (digits, letters,
        # most labels) share one row per question, so the question is encoded once, not once per choice.
        rows: list[tuple[int, list[int], list[tuple[int, list[tuple[int, int]]]]]] = []
        for i, text in enumerate(texts):
            rest = text[len(shared) :]
            rest_ids = self.tokenizer(rest, add_special_tokens=False)["input_ids"] if rest else []
            single: list[tuple[int, list[tuple[int, int]]]] = []
            for j, choice in enumerate(choices):
                full = self.tokenizer(rest + choice, add_special_tokens=False)["input_ids"]
                if full[: len(rest_ids)] == rest_ids and len(full) > len(rest_ids):
                    ids, n_choice = full, len(full) - len(rest_ids)
                else:  # the choice merged with the preceding text; score it as separate tokens
                    cids = self.tokenizer(choice, add_special_tokens=False)["input_ids"]
                    ids, n_choice = rest_ids + cids, len(cids)
                if n_choice == 1:
                    single.append((j, [(len(rest_ids), ids[-1])]))
                else:
                    rows.append((i, ids, [(j, [(p, ids[p]) for p in range(len(ids) - n_choice, len(ids))])]))
            if single:
                rows.append((i, rest_ids, single))

        scores = [[0.0] * len(choices) for _ in suffixes]
        with self._lock, torch.inference_mode(), self._adapter_scope(adapter):
            cache, last_logits, encoded = self._encode_prefix(prefix_ids, adapter)
            first = torch.log_softmax(last_logits, dim=-1)
            for chunk in self._row_chunks(rows):
                logprobs = (
                    self._row_logprobs(chunk, cache, len(prefix_ids)) if any(r[1] for r in chunk) else None
                )
                for k, (i, _, targets) in enumerate(chunk):
                    for j, positions in targets:
                        total = 0.0
                        for pos, token in positions:
                            dist = first if pos == 0 or logprobs is None else logprobs[k, pos - 1]
                            total += float(dist[token])
                        scores[i][j] = total
        self.usage.add(encoded + sum(len(r[1]) for r in rows))
        return [_normalize(choices, s, len(prefix_ids)) for s in scores]

    def _row_chunks(self, rows: list[Any]) -> Iterator[list[Any]]:
        """Rows in chunks: up to a token budget when packed, ``2 x max_batch_size`` rows when padded."""
        if not self._pack_rows:
            step = max(1, self.endpoint.max_batch_size * 2)
            for start in range(0, len(rows), step):
                yield rows[start : start + step]
            return
        budget = max(64, self.endpoint.max_batch_size * 64)
        chunk: list[Any] = []
        used = 0
        for row in rows:
            if chunk and used + len(row[1]) > budget:
                yield chunk
                chunk, used = [], 0
            chunk.append(row)
            used += len(row[1])
        if chunk:
            yield chunk

    def _row_logprobs(self, chunk: list[Any], cache: Any, n_prefix: int) -> Any:
        """Log-probabilities after each row position, looked up as ``result[row, position]``."""
        if self._pack_rows:
            try:
                return self._packed_logprobs(chunk, cache, n_prefix)
            except (TypeError, ValueError, RuntimeError) as exc:  # an architecture without custom 4D masks
                log.warning("packed_scoring_unsupported", model=self._name, error=str(exc)[:200])
                self._pack_rows = False
        return self._padded_logprobs(chunk, cache, n_prefix)

    def _packed_logprobs(self, chunk: list[Any], cache: Any, n_prefix: int) -> _KeptLogprobs:
        """All rows as one sequence after the prefix; a block-diagonal mask keeps each row to the prefix and
        its own earlier tokens, and position ids restart after the prefix for every row. The prefix cache is
        thus shared by every row instead of copied per row."""
        offsets: list[int] = []
        ids: list[int] = []
        positions: list[int] = []
        for _, row_ids, _ in chunk:
            offsets.append(len(ids))
            ids.extend(row_ids)
            positions.extend(range(n_prefix, n_prefix + len(row_ids)))
        total = len(ids)
        allowed = torch.zeros((total, n_prefix + total), dtype=torch.bool, device=self.device)
        allowed[:, :n_prefix] = True
        for offset, (_, row_ids, _) in zip(offsets, chunk, strict=True):
            n = len(row_ids)
            if n:
                block = torch.ones((n, n), dtype=torch.bool, device=self.device).tril()
                allowed[offset : offset + n, n_prefix + offset : n_prefix + offset + n] = block
        dtype = self.base_model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype, device=self.device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        # Only positions some choice token is read from need the vocabulary projection.
        wanted = sorted(
            {
                offset + pos - 1
                for offset, (_, _, targets) in zip(offsets, chunk, strict=True)
                for _, row_positions in targets
                for pos, _ in row_positions
                if pos > 0
            }
        )
        kwargs: dict[str, Any] = (
            {"logits_to_keep": torch.tensor(wanted, device=self.device)} if self._keeps_logits else {}
        )
        logits = self.model(
            input_ids=torch.tensor([ids], device=self.device),
            position_ids=torch.tensor([positions], device=self.device),
            attention_mask=mask[None, None],
            past_key_values=copy.deepcopy(cache),
            use_cache=True,
            **kwargs,
        ).logits[0]
        flat = torch.log_softmax(logits.float(), dim=-1)
        # row of ``flat`` holding each wanted position
        index = {p: n for n, p in enumerate(wanted)} if self._keeps_logits else {p: p for p in wanted}
        return _KeptLogprobs(
            flat,
            {
                (k, pos - 1): index[offset + pos - 1]
                for k, (offset, (_, _, targets)) in enumerate(zip(offsets, chunk, strict=True))
                for _, row_positions in targets
                for pos, _ in row_positions
                if pos > 0
            },
        )

    def _padded_logprobs(self, chunk: list[Any], cache: Any, n_prefix: int) -> Any:
        """Rows as a right-padded batch, each on its own copy of the prefix cache."""
        width = max(len(r[1]) for r in chunk)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(chunk), width), pad, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(chunk), n_prefix + width), dtype=torch.long, device=self.device)
        mask[:, :n_prefix] = 1
        for k, (_, row_ids, _) in enumerate(chunk):
            if row_ids:
                ids[k, : len(row_ids)] = torch.tensor(row_ids, device=self.device)
            mask[k, n_prefix : n_prefix + len(row_ids)] = 1
        batch_cache = copy.deepcopy(cache)
        batch_cache.batch_repeat_interleave(len(chunk))
        keep = torch.zeros((len(chunk), width), dtype=torch.bool, device=self.device)
        for k, (_, _, targets) in enumerate(chunk):
            for _, positions in targets:
                for pos, _ in positions:
                    if pos > 0:
                        keep[k, pos - 1] = True
        kwargs: dict[str, Any] = {"logits_to_keep": keep} if self._keeps_logits else {}
        logits = self.model(
            input_ids=ids, attention_mask=mask, past_key_values=batch_cache, use_cache=True, **kwargs
        ).logits
        if not self._keeps_logits:
            return torch.log_softmax(logits.float(), dim=-1)
        # (kept positions, vocab) in row-major order -> look up by (row, position)
        flat = torch.log_softmax(logits.float(), dim=-1)
        return _KeptLogprobs(flat, {tuple(p): n for n, p in enumerate(keep.nonzero().tolist())})

    def _encode_prefix(self, prefix_ids: list[int], adapter: str | None) -> tuple[Any, torch.Tensor, int]:
        """(KV cache, next-token logits, tokens encoded) after ``prefix_ids``; reuses the previous prefix.

        Call under the lock and inside the adapter scope. The returned cache must not be modified (callers
        copy it), since it is kept for the next call.
        """
        cached, self._prefix_kv = self._prefix_kv, None
        reuse = 0
        if cached is not None and self.reuse_prefix and cached.adapter == adapter:
            # Keep at least one token to encode: its logits are the first choice token's distribution.
            reuse = min(_common_length(cached.ids, prefix_ids), len(prefix_ids) - 1)
        keep_last: dict[str, Any] = {"logits_to_keep": 1} if self._keeps_logits else {}
        if reuse > 0 and cached is not None:
            cache = cached.cache
            if reuse < len(cached.ids):
                cache.crop(reuse - len(cached.ids))
            tail = torch.tensor([prefix_ids[reuse:]], device=self.device)
            out = self.model(input_ids=tail, past_key_values=cache, use_cache=True, **keep_last)
        else:
            ids = torch.tensor([prefix_ids], device=self.device)
            out = self.model(input_ids=ids, use_cache=True, **keep_last)
        cache, last_logits = out.past_key_values, out.logits[0, -1].float()
        if self.reuse_prefix:
            self._prefix_kv = _PrefixKV(adapter, list(prefix_ids), cache)
        return cache, last_logits, len(prefix_ids) - reuse


@dataclass
class _PrefixKV:
    adapter: str | None
    ids: list[int]
    cache: Any


class _KeptLogprobs:
    """Log-probabilities computed only at kept (row, position) pairs, indexed like the full tensor."""

    def __init__(self, flat: torch.Tensor, index: dict[tuple[int, int], int]) -> None:
        self._flat = flat
        self._index = index

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        return self._flat[self._index[key]]


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _normalize(choices: Sequence[str], logprobs: list[float], prompt_tokens: int) -> ChoiceScores:
    t = torch.tensor(logprobs)
    probs = torch.softmax(t, dim=0).tolist()
    return ChoiceScores(tuple(choices), tuple(probs), "logprobs", prompt_tokens)


def _shared_prefix(texts: Sequence[str]) -> str:
    """The longest common prefix, cut back to a newline so the token boundary is stable."""
    common = os.path.commonprefix(list(texts))  # noqa: RUF071 - character prefix intended
    if len(texts) == 1:
        common = common[: len(common) - 1]  # leave at least the last character to the suffix
    cut = common.rfind("\n")
    return common[: cut + 1] if cut >= 0 else ""


def _apply_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    hits = [text.find(s) for s in stops if s and s in text]
    if not hits:
        return text, False
    return text[: min(hits)], True
