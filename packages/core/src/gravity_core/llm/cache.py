"""On-disk response cache: a re-run with the same model, adapter, messages and parameters is free.

Only deterministic calls are cached (greedy decoding, or sampling with an explicit seed; choice scores
always). Entries live in one SQLite file (WAL mode) that several processes can share.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gravity_core.llm.types import (
    ChoiceRequest,
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    ModelInfo,
    StreamEvent,
    resolve_adapters,
)


class ResponseCache:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @staticmethod
    def key(**parts: Any) -> str:
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> Any | None:
        row = self._conn().execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        self._conn().execute(
            "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
            (key, json.dumps(value, ensure_ascii=False), time.time()),
        )


def _adapter_fingerprint(path: str) -> str:
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        p = Path(path) / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class CachedLLM(LLMClient):
    """Wraps any backend; looks every deterministic call up in a :class:`ResponseCache` first."""

    def __init__(self, inner: LLMClient, cache: ResponseCache) -> None:
        self.inner = inner
        self.cache = cache
        self.usage = inner.usage
        self._adapter_ids: dict[str, str] = {}

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def load_adapter(self, name: str, path: str) -> None:
        self.inner.load_adapter(name, path)
        self._adapter_ids[name] = _adapter_fingerprint(path)

    def unload_adapter(self, name: str) -> None:
        self.inner.unload_adapter(name)
        self._adapter_ids.pop(name, None)

    def close(self) -> None:
        self.inner.close()

    def _adapter_key(self, adapter: str | None) -> str | None:
        if adapter is None:
            return None
        return f"{adapter}@{self._adapter_ids.get(adapter, '')}"

    @staticmethod
    def _cacheable(params: GenerationParams | None) -> bool:
        return params is None or params.greedy or params.seed is not None

    def _chat_key(self, messages: Conversation, params: GenerationParams | None, adapter: str | None) -> str:
        return self.cache.key(
            kind="chat",
            model=self.inner.info.name,
            backend=self.inner.info.backend,
            adapter=self._adapter_key(adapter),
            messages=list(messages),
            params=dataclasses.asdict(params) if params else None,
        )

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        names = resolve_adapters(adapters, len(conversations))
        if not self._cacheable(params):
            return self.inner.chat_batch(conversations, params, names)
        keys = [self._chat_key(c, params, a) for c, a in zip(conversations, names, strict=True)]
        results: list[Completion | None] = []
        for key in keys:
            hit = self.cache.get(key)
            results.append(Completion(**{**hit, "cached": True}) if hit else None)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            fresh = self.inner.chat_batch(
                [conversations[i] for i in missing], params, [names[i] for i in missing]
            )
            for i, completion in zip(missing, fresh, strict=True):
                results[i] = completion
                self.cache.put(keys[i], dataclasses.asdict(completion))
        for r in results:
            if r is not None and r.cached:
                self.usage.add(0, 0, cached=True)
        return [r for r in results if r is not None]

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        return self.inner.stream_chat(messages, params, adapter)

    def _score_key(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None, prefill: str
    ) -> str:
        return self.cache.key(
            kind="score",
            model=self.inner.info.name,
            backend=self.inner.info.backend,
            adapter=self._adapter_key(adapter),
            messages=list(messages),
            choices=list(choices),
            prefill=prefill,
        )

    def _cached_scores(self, key: str) -> ChoiceScores | None:
        hit = self.cache.get(key)
        if hit is None:
            return None
        self.usage.add(0, 0, cached=True)
        return ChoiceScores(
            **{
                **hit,
                "choices": tuple(hit["choices"]),
                "probabilities": tuple(hit["probabilities"]),
                # entries cached before ChoiceScores carried log-probabilities have none
                "logprobs": tuple(hit.get("logprobs", ())),
            }
        )

    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        key = self._score_key(messages, choices, adapter, prefill)
        hit = self._cached_scores(key)
        if hit is not None:
            return hit
        scores = self.inner.score_choices(messages, choices, adapter=adapter, prefill=prefill)
        if scores.usable:
            self.cache.put(key, dataclasses.asdict(scores))
        return scores

    def score_choices_batch(
        self, requests: Sequence[ChoiceRequest], adapter: str | None = None
    ) -> list[ChoiceScores]:
        keys = [self._score_key(r.messages, r.choices, adapter, r.prefill) for r in requests]
        results = [self._cached_scores(k) for k in keys]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            fresh = self.inner.score_choices_batch([requests[i] for i in missing], adapter=adapter)
            for i, scores in zip(missing, fresh, strict=True):
                results[i] = scores
                if scores.usable:
                    self.cache.put(keys[i], dataclasses.asdict(scores))
        return [r for r in results if r is not None]

    def score_choices_shared_prefix(
        self,
        messages: Conversation,
        suffixes: Sequence[str],
        choices: Sequence[str],
        adapter: str | None = None,
        prefill: str = "",
    ) -> list[ChoiceScores]:
        base = list(messages)
        last = base[-1]
        keys = [
            self._score_key([*base[:-1], {**last, "content": last["content"] + s}], choices, adapter, prefill)
            for s in suffixes
        ]
        results = [self._cached_scores(k) for k in keys]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            fresh = self.inner.score_choices_shared_prefix(
                messages, [suffixes[i] for i in missing], choices, adapter=adapter, prefill=prefill
            )
            for i, scores in zip(missing, fresh, strict=True):
                results[i] = scores
                if scores.usable:
                    self.cache.put(keys[i], dataclasses.asdict(scores))
        return [r for r in results if r is not None]
