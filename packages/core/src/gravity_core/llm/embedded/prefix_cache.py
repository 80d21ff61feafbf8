"""Prompt prefixes already encoded, kept so a request that starts the same way skips that part of the prefill.

GRAVITY's prompts share long openings: the chat template, and for one reader the whole profile preamble
across every book they are described. Prompts are encoded in fixed chunks (engine.py), and only whole
chunks are kept and reused, so a request that starts from cached chunks computes exactly what it would
have computed from scratch: reuse saves time without changing a single output bit. Entries are per adapter
(LoRA changes the keys and values) and evicted least-recently-used under a byte budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class CachedPrefix:
    tokens: int
    keys: list[torch.Tensor]
    values: list[torch.Tensor]


@dataclass
class PrefixStats:
    lookups: int = 0
    hits: int = 0
    reused_tokens: int = 0


class PrefixCache:
    def __init__(self, budget_bytes: int, chunk: int) -> None:
        self.budget_bytes = max(0, budget_bytes)
        self.chunk = chunk
        self.stats = PrefixStats()
        self._entries: OrderedDict[tuple[str | None, tuple[int, ...]], CachedPrefix] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.budget_bytes > 0

    def lookup(self, adapter: str | None, ids: Sequence[int]) -> CachedPrefix | None:
        """The longest cached whole-chunk prefix of ``ids`` that leaves at least one token to encode."""
        if not self.enabled:
            return None
        with self._lock:
            self.stats.lookups += 1
            best: tuple[int, tuple[str | None, tuple[int, ...]]] | None = None
            for key in self._entries:
                if key[0] != adapter:
                    continue
                common = _common_chunks(key[1], ids, self.chunk)
                # the last prompt token must be encoded now: its logits give the first new token
                while common and common * self.chunk >= len(ids):
                    common -= 1
                if common and (best is None or common > best[0]):
                    best = (common, key)
            if best is None:
                return None
            chunks, key = best
            self._entries.move_to_end(key)
            entry = self._entries[key]
            tokens = chunks * self.chunk
            self.stats.hits += 1
            self.stats.reused_tokens += tokens
            return CachedPrefix(tokens, entry.keys, entry.values)

    def store(
        self, adapter: str | None, ids: Sequence[int], keys: list[torch.Tensor], values: list[torch.Tensor]
    ) -> None:
        """Keep the whole chunks of an encoded prompt (``keys``/``values`` hold exactly those tokens)."""
        tokens = keys[0].shape[1] if keys else 0
        if not self.enabled or tokens < self.chunk:
            return
        size = sum(t.numel() * t.element_size() for t in (*keys, *values))
        if size > self.budget_bytes:
            return
        key = (adapter, tuple(ids[:tokens]))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return
            # an entry that is a prefix of the new one adds nothing once the new one is kept
            for other in [k for k in self._entries if k[0] == adapter and key[1][: len(k[1])] == k[1]]:
                self._drop(other)
            self._entries[key] = CachedPrefix(tokens, keys, values)
            self._bytes += size
            while self._bytes > self.budget_bytes and self._entries:
                self._drop(next(iter(self._entries)))

    def forget(self, adapter: str | None = None) -> None:
        """Drop the entries of ``adapter`` (all entries when None): its weights changed or it is gone."""
        with self._lock:
            for key in [k for k in self._entries if adapter is None or k[0] == adapter]:
                self._drop(key)

    def _drop(self, key: tuple[str | None, tuple[int, ...]]) -> None:
        entry = self._entries.pop(key)
        self._bytes -= sum(t.numel() * t.element_size() for t in (*entry.keys, *entry.values))

    def __len__(self) -> int:
        return len(self._entries)


def _common_chunks(a: Sequence[int], b: Sequence[int], chunk: int) -> int:
    n = min(len(a), len(b)) // chunk
    for c in range(n):
        if a[c * chunk : (c + 1) * chunk] != tuple(b[c * chunk : (c + 1) * chunk]):
            return c
    return n
