"""How long an embedded model holds its memory (~1 GB each for SmolLM2 in fp32 with its packed weights).

A long-lived process (a test session, a notebook) that builds models and drops them must get the memory back:
the engine thread of an idle model ends, so it no longer holds the model, and ``release_embedded_models``
makes the registry let go of what no client holds, stopping pools' worker processes.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from gravity_testing import wait_until

from gravity_core.config import LLMEndpoint
from gravity_core.llm import make_llm, release_embedded_models
from gravity_core.llm.embedded import EmbeddedLLM, engine
from gravity_core.llm.process_pool import ProcessPoolLLM
from gravity_core.llm.types import GenerationParams

pytestmark = pytest.mark.model

QUESTION = [{"role": "user", "content": "Name one colour."}]
PARAMS = GenerationParams(max_tokens=4)


def _collected(ref: weakref.ref[Any]) -> bool:
    gc.collect()
    return ref() is None


def _idles_and_serves_again(llm: EmbeddedLLM) -> None:
    first = llm.chat(QUESTION, PARAMS).text
    wait_until(lambda: not llm.engine.serving, 10, "the idle engine thread to end", every_s=0.05)
    assert llm.chat(QUESTION, PARAMS).text == first  # the next request starts a new thread


def test_an_idle_engine_ends_its_thread_serves_again_and_a_dropped_model_is_freed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "IDLE_EXIT_S", 0.2)
    llm = EmbeddedLLM(LLMEndpoint(max_tokens=4))
    _idles_and_serves_again(llm)
    model = weakref.ref(llm.loaded.model)  # the engine holds the model, not the client around it
    del llm
    wait_until(lambda: _collected(model), 10, "the model no one holds to be freed", every_s=0.05)


def test_release_frees_what_no_client_holds_keeps_what_one_does_and_stops_pools() -> None:
    held = make_llm(LLMEndpoint(max_tokens=5), cache=None)
    dropped = make_llm(LLMEndpoint(max_tokens=6), cache=None)
    pool = make_llm(LLMEndpoint(processes=2, threads=2, max_tokens=5), cache=None)
    assert isinstance(pool, ProcessPoolLLM)
    workers = [w.process for w in pool._workers]
    answer = held.chat(QUESTION, PARAMS).text
    dropped.chat(QUESTION, PARAMS)
    gone = weakref.ref(dropped.loaded.model)  # type: ignore[attr-defined]
    del dropped
    try:
        assert release_embedded_models() == 3
        # the engine threads were idle, so the release itself freed the dropped model (no idle wait)
        assert gone() is None, "the registry kept a model no client holds"
        assert not any(p.is_alive() for p in workers)
        # a model a client still holds is handed out again, never loaded a second time
        assert make_llm(LLMEndpoint(max_tokens=5), cache=None) is held
        assert held.chat(QUESTION, PARAMS).text == answer
        again = make_llm(LLMEndpoint(processes=2, threads=2, max_tokens=5), cache=None)
        assert again is not pool and all(w.process.is_alive() for w in again._workers)  # type: ignore[attr-defined]
    finally:
        release_embedded_models()
