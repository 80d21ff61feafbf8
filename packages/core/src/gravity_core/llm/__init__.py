"""LLM clients: one interface, an embedded (transformers + peft) and an OpenAI-compatible backend."""

from __future__ import annotations

import gc
import threading
import weakref
from typing import TYPE_CHECKING, cast

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

if TYPE_CHECKING:
    from gravity_core.llm.embedded import EmbeddedLLM

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
    "llm_for_role",
    "make_llm",
    "parse_choice",
    "release_embedded_models",
]

_Key = tuple[str, str, str, int, int, int]
_embedded: dict[_Key, LLMClient] = {}
# In-process models the registry let go of (release_embedded_models) that a client may still hold: handed out
# again while alive, so letting go never loads a second copy.
_released: weakref.WeakValueDictionary[_Key, LLMClient] = weakref.WeakValueDictionary()
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
                held = _released.pop(key, None)
                if held is None:
                    require("models", f"the embedded LLM backend (model {endpoint.model!r})")
                    held = _load_embedded(endpoint)
                _embedded[key] = held
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


def release_embedded_models() -> int:
    """Give back the memory of the embedded models a long-lived process (a test session) no longer uses.

    Pools (``processes > 1``): their worker processes stop, and the next ``make_llm`` for such an endpoint
    starts a new pool. In-process models: the registry stops holding them. One a client still holds keeps
    serving and is what ``make_llm`` hands out again; the others are freed (~1 GB each). A service keeps its
    models for its lifetime and never calls this. Returns how many models were released."""
    count = _let_go_of_embedded_models()
    gc.collect()  # a model's modules hold reference cycles; the released clients are no longer referenced here
    return count


def _let_go_of_embedded_models() -> int:
    from gravity_core.llm.process_pool import ProcessPoolLLM

    with _lock:
        released = list(_embedded.items())
        _embedded.clear()
        _released.update((key, client) for key, client in released if not isinstance(client, ProcessPoolLLM))
    for _, client in released:
        if isinstance(client, ProcessPoolLLM):
            client.close()
        else:
            cast("EmbeddedLLM", client).engine.park()  # an idle engine thread holds its model
    return len(released)


def _load_embedded(endpoint: LLMEndpoint) -> LLMClient:
    if endpoint.processes > 1:
        from gravity_core.llm.process_pool import ProcessPoolLLM

        return ProcessPoolLLM(endpoint)
    from gravity_core.llm.embedded import EmbeddedLLM

    return EmbeddedLLM(endpoint)


def llm_for_role(settings: Settings, role: str) -> LLMClient:
    """The client for one of the roles annotator, author, writer, judge."""
    return make_llm(settings.llm.role(role), settings.cache)
