"""Choice scoring on the embedded model: the log-probability of each allowed answer, many questions at once.

A shared context (a reader's review history, a judge's persona) is encoded once into a KV cache; every
(question, choice) row is then scored against it. Choices that are one token after the question share one
row. Rows are packed into one sequence after the prefix, each attending to the prefix and to its own tokens
only (rows.blocks_attention), so they share the prefix cache instead of copying it per row (a padded batch
with one cache copy per row is the fallback for architectures that reject custom attention). The last
encoded prefix is kept: the next call encodes only what it adds, like vLLM's prefix caching; a long new
context is encoded by the generation engine instead, so a prompt generated from it later reuses it.
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gravity_core.errors import InvalidInput
from gravity_core.llm.embedded.adapters import AdapterSet
from gravity_core.llm.embedded.engine import PREFILL_CHUNK, ContinuousEngine, EncodedPrompt
from gravity_core.llm.embedded.loading import LoadedModel
from gravity_core.llm.embedded.prompting import Prompter
from gravity_core.llm.embedded.rows import ATTENTION, blocks_mask
from gravity_core.llm.types import ChoiceScores, Conversation, Usage
from gravity_core.logging import get_logger

log = get_logger(__name__)

# New context at least this long is encoded by the generation engine (and kept in its prefix cache); less
# is encoded on top of the previous prefix here. Four prefill chunks: a reader's chunk of reviews or a
# judge's persona is far longer, a question or a description added to the same context is shorter.
ENGINE_CONTEXT_TOKENS = 4 * PREFILL_CHUNK


class ChoiceScorer:
    def __init__(
        self,
        loaded: LoadedModel,
        adapters: AdapterSet,
        prompter: Prompter,
        lock: threading.RLock,
        usage: Usage,
        max_batch_size: int,
        engine: ContinuousEngine | None = None,
    ) -> None:
        self.loaded = loaded
        self.engine = engine
        self.adapters = adapters
        self.prompter = prompter
        self.lock = lock
        self.usage = usage
        self.max_batch_size = max(1, max_batch_size)
        # Reuse the last encoded prefix (set False to measure the naive cost).
        self.reuse_prefix = True
        self.prefix_kv: _PrefixKV | None = None
        # bumped when the adapters change: a prefix encoded before must not be kept after
        self._epoch = 0
        # Models whose forward takes logits_to_keep skip the vocabulary projection where no logit is read.
        self._keeps_logits = "logits_to_keep" in inspect.signature(loaded.model.forward).parameters
        self.pack_rows = True
        # Packed rows attend through rows.blocks_attention (False: SDPA under a block-diagonal mask)
        self.cascade = True

    def forget_prefix(self) -> None:
        """Drop the kept prefix (the adapters changed, so the cache no longer matches the model)."""
        self.prefix_kv = None
        self._epoch += 1

    def score_shared_prefix(
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
        self.adapters.check(adapter)
        longest_suffix = max(self.prompter.count_tokens(s) for s in suffixes)
        longest_choice = max(self.prompter.count_tokens(c) for c in choices)
        base = list(messages)
        base, _ = self.prompter.fit_messages(
            base, self.prompter.context_window - longest_suffix - longest_choice - 16
        )
        last = base[-1]
        texts = [
            self.prompter.render([*base[:-1], {**last, "content": last["content"] + s}]) + prefill
            for s in suffixes
        ]
        shared = _shared_prefix(texts)
        prefix_ids = self.loaded.tokenizer(shared, add_special_tokens=False)["input_ids"]
        # A row feeds ``ids`` after the cached prefix and reads, for each listed choice, the log-probabilities
        # of its tokens at the given positions. Choices that are one token after the question (digits, letters,
        # most labels) share one row per question, so the question is encoded once, not once per choice.
        rows: list[tuple[int, list[int], list[tuple[int, list[tuple[int, int]]]]]] = []
        for i, text in enumerate(texts):
            rest = text[len(shared) :]
            rest_ids = self.loaded.tokenizer(rest, add_special_tokens=False)["input_ids"] if rest else []
            single: list[tuple[int, list[tuple[int, int]]]] = []
            for j, choice in enumerate(choices):
                full = self.loaded.tokenizer(rest + choice, add_special_tokens=False)["input_ids"]
                if full[: len(rest_ids)] == rest_ids and len(full) > len(rest_ids):
                    ids, n_choice = full, len(full) - len(rest_ids)
                else:  # the choice merged with the preceding text; score it as separate tokens
                    cids = self.loaded.tokenizer(choice, add_special_tokens=False)["input_ids"]
                    ids, n_choice = rest_ids + cids, len(cids)
                if n_choice == 1:
                    single.append((j, [(len(rest_ids), ids[-1])]))
                else:
                    rows.append((i, ids, [(j, [(p, ids[p]) for p in range(len(ids) - n_choice, len(ids))])]))
            if single:
                rows.append((i, rest_ids, single))

        scores = [[0.0] * len(choices) for _ in suffixes]
        epoch = self._epoch
        with torch.inference_mode():
            cache, last_logits, encoded = self._encode_prefix(prefix_ids, adapter)
        with self.lock, torch.inference_mode(), self.adapters.scope(adapter):
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
            # kept for the next call only now: a concurrent call must not crop it while these rows read it
            if self.reuse_prefix and epoch == self._epoch:
                self.prefix_kv = _PrefixKV(adapter, list(prefix_ids), cache)
        self.usage.add(encoded + sum(len(r[1]) for r in rows))
        return [_normalize(choices, s, len(prefix_ids)) for s in scores]

    def _row_chunks(self, rows: list[Any]) -> Iterator[list[Any]]:
        """Rows in chunks: up to a token budget when packed, ``2 x max_batch_size`` rows when padded."""
        if not self.pack_rows:
            step = max(1, self.max_batch_size * 2)
            for start in range(0, len(rows), step):
                yield rows[start : start + step]
            return
        budget = max(64, self.max_batch_size * 64)
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
        if self.pack_rows:
            try:
                return self._packed_logprobs(chunk, cache, n_prefix)
            except (TypeError, ValueError, RuntimeError) as exc:  # an architecture without custom 4D masks
                log.warning("packed_scoring_unsupported", model=self.loaded.name, error=str(exc)[:200])
                self.pack_rows = False
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
        blocks = [(offset, len(row_ids)) for offset, (_, row_ids, _) in zip(offsets, chunk, strict=True)]
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
            {"logits_to_keep": torch.tensor(wanted, device=self.loaded.device)} if self._keeps_logits else {}
        )
        if self.cascade and self.loaded.model.config._attn_implementation == ATTENTION:
            kwargs["gravity_blocks"] = blocks  # rows.blocks_attention: no mask over the whole square
        else:
            mask = blocks_mask(blocks, n_prefix, self.adapters.base_model.dtype, self.loaded.device)
            kwargs["attention_mask"] = mask[None, None]
        logits = self.adapters.model(
            input_ids=torch.tensor([ids], device=self.loaded.device),
            position_ids=torch.tensor([positions], device=self.loaded.device),
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
        pad = self.loaded.tokenizer.pad_token_id
        ids = torch.full((len(chunk), width), pad, dtype=torch.long, device=self.loaded.device)
        mask = torch.zeros((len(chunk), n_prefix + width), dtype=torch.long, device=self.loaded.device)
        mask[:, :n_prefix] = 1
        for k, (_, row_ids, _) in enumerate(chunk):
            if row_ids:
                ids[k, : len(row_ids)] = torch.tensor(row_ids, device=self.loaded.device)
            mask[k, n_prefix : n_prefix + len(row_ids)] = 1
        batch_cache = copy.deepcopy(cache)
        batch_cache.batch_repeat_interleave(len(chunk))
        keep = torch.zeros((len(chunk), width), dtype=torch.bool, device=self.loaded.device)
        for k, (_, _, targets) in enumerate(chunk):
            for _, positions in targets:
                for pos, _ in positions:
                    if pos > 0:
                        keep[k, pos - 1] = True
        kwargs: dict[str, Any] = {"logits_to_keep": keep} if self._keeps_logits else {}
        logits = self.adapters.model(
            input_ids=ids, attention_mask=mask, past_key_values=batch_cache, use_cache=True, **kwargs
        ).logits
        if not self._keeps_logits:
            return torch.log_softmax(logits.float(), dim=-1)
        # (kept positions, vocab) in row-major order -> look up by (row, position)
        flat = torch.log_softmax(logits.float(), dim=-1)
        return _KeptLogprobs(flat, {tuple(p): n for n, p in enumerate(keep.nonzero().tolist())})

    def _encode_prefix(self, prefix_ids: list[int], adapter: str | None) -> tuple[Any, torch.Tensor, int]:
        """(KV cache, next-token logits, tokens encoded) after ``prefix_ids``; reuses the previous prefix.

        A short addition to the previous prefix is encoded on top of it here; a long new context goes
        through the generation engine, whose prefix cache then holds it for prompts that start the same
        way (the profiler generates a reader's summary from the reviews it has just scored). Call without
        the lock (the engine's thread takes it). The returned cache must not be modified (callers copy it):
        the caller keeps it for the next call.
        """
        cached, self.prefix_kv = self.prefix_kv, None
        reuse = 0
        if cached is not None and self.reuse_prefix and cached.adapter == adapter:
            # Keep at least one token to encode: its logits are the first choice token's distribution.
            reuse = min(_common_length(cached.ids, prefix_ids), len(prefix_ids) - 1)
        # reuse_prefix False measures the naive cost: everything encoded here, no cache of any kind
        if self.engine is not None and self.reuse_prefix and len(prefix_ids) - reuse >= ENGINE_CONTEXT_TOKENS:
            encoded = self.engine.encode(prefix_ids, adapter)
            cache, last_logits = _dynamic_cache(encoded), encoded.logits.float()
            new_tokens = len(prefix_ids) - encoded.reused
        else:
            with self.lock, self.adapters.scope(adapter):
                cache, last_logits = self._encode_here(prefix_ids, cached if reuse > 0 else None, reuse)
            new_tokens = len(prefix_ids) - reuse
        return cache, last_logits, new_tokens

    def _encode_here(
        self, prefix_ids: list[int], cached: _PrefixKV | None, reuse: int
    ) -> tuple[Any, torch.Tensor]:
        """Encode on the calling thread, on top of the first ``reuse`` tokens of ``cached`` when given."""
        keep_last: dict[str, Any] = {"logits_to_keep": 1} if self._keeps_logits else {}
        if cached is not None:
            cache = cached.cache
            if reuse < len(cached.ids):
                cache.crop(reuse - len(cached.ids))
            tail = torch.tensor([prefix_ids[reuse:]], device=self.loaded.device)
            out = self.adapters.model(input_ids=tail, past_key_values=cache, use_cache=True, **keep_last)
        else:
            ids = torch.tensor([prefix_ids], device=self.loaded.device)
            out = self.adapters.model(input_ids=ids, use_cache=True, **keep_last)
        return out.past_key_values, out.logits[0, -1].float()


def _dynamic_cache(encoded: EncodedPrompt) -> Any:
    """The engine's per-layer keys and values as the cache a transformers forward continues from."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for layer, (keys, values) in enumerate(zip(encoded.keys, encoded.values, strict=True)):
        cache.update(keys[None].contiguous(), values[None].contiguous(), layer)
    return cache


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
    return ChoiceScores(tuple(choices), tuple(probs), "logprobs", prompt_tokens, logprobs=tuple(logprobs))


def _shared_prefix(texts: Sequence[str]) -> str:
    """The longest common prefix, cut back to a newline so the token boundary is stable."""
    common = os.path.commonprefix(list(texts))  # noqa: RUF071 - character prefix intended
    if len(texts) == 1:
        common = common[: len(common) - 1]  # leave at least the last character to the suffix
    cut = common.rfind("\n")
    return common[: cut + 1] if cut >= 0 else ""
