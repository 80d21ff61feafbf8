"""LLM clients: one interface, an embedded (transformers + peft) and an OpenAI-compatible backend."""

from __future__ import annotations

import threading

from gravity_core.config import CacheSettings, LLMEndpoint, Settings
from gravity_core.extras import require
from gravity_core.llm.cache import CachedLLM, ResponseCache
from gravity_core.llm.types import (
    ChoiceRequest,
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    Message,
    ModelInfo,
    StreamEvent,
    Usage,
    parse_choice,
)

__all__ = [
    "CachedLLM",
    "ChoiceRequest",
    "ChoiceScores",
    "Completion",
    "Conversation",
    "GenerationParams",
    "LLMClient",
    "Message",
    "ModelInfo",
    "ResponseCache",
    "StreamEvent",
    "Usage",
    "close_embedded_pools",
    "llm_for_role",
    "make_llm",
    "parse_choice",
]

_embedded: dict[tuple[str, str, str, int, int, int], LLMClient] = {}
_caches: dict[str, ResponseCache] = {}
_lock = threading.Lock()


def make_llm(endpoint: LLMEndpoint, cache: CacheSettings | None = None) -> LLMClient:
    """Build a client for ``endpoint``. Embedded models are loaded once per process and shared by roles."""
    inner: LLMClient
    if endpoint.backend == "embedded":
        key = (
            endpoint.model,
            endpoint.device,
            endpoint.dtype,
            endpoint.max_batch_size,
            endpoint.max_tokens,
            endpoint.processes,
        )
        with _lock:
            if key not in _embedded:
                require("models", f"the embedded LLM backend (model {endpoint.model!r})")
                _embedded[key] = _load_embedded(endpoint)
            inner = _embedded[key]
    else:
        from gravity_core.llm.openai_backend import OpenAILLM

        inner = OpenAILLM(endpoint)
    if cache is None or not cache.enabled:
        return inner
    path = str(cache.resolved_path())
    with _lock:
        store = _caches.setdefault(path, ResponseCache(path))
    return CachedLLM(inner, store)


def close_embedded_pools() -> int:
    """Stop the worker processes of every embedded model loaded in a pool (``processes > 1``) and forget those
    pools; the next ``make_llm`` for such an endpoint starts a new one. A service keeps its pool for its
    lifetime; a long-lived process that used one for a while (a test session) calls this to give the workers'
    memory back. In-process models stay loaded: their engine thread keeps serving the clients already handed
    out, so forgetting them would free nothing and load a second copy. Returns how many pools were stopped."""
    from gravity_core.llm.process_pool import ProcessPoolLLM

    with _lock:
        pools = {key: client for key, client in _embedded.items() if isinstance(client, ProcessPoolLLM)}
        for key in pools:
            del _embedded[key]
    for pool in pools.values():
        pool.close()
    return len(pools)


def _load_embedded(endpoint: LLMEndpoint) -> LLMClient:
    if endpoint.processes > 1:
        from gravity_core.llm.process_pool import ProcessPoolLLM

        return ProcessPoolLLM(endpoint)
    from gravity_core.llm.embedded import EmbeddedLLM

    return EmbeddedLLM(endpoint)


def llm_for_role(settings: Settings, role: str) -> LLMClient:
    """The client for one of the roles annotator, author, writer, judge."""
    return make_llm(settings.llm.role(role), settings.cache)
