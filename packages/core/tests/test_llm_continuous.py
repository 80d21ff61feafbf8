"""Continuous batching on the real SmolLM2: requests join the running batch, and outputs do not depend on it.

The reference for every comparison is the same prompt generated alone (one request at a time). Requests
"arriving mid-batch" are submitted only after the first ones have produced tokens, so they join a batch
that is already decoding (the engine counts such joins).
"""

import threading
from pathlib import Path

import pytest

from gravity_core.config import LLMEndpoint
from gravity_core.llm import GenerationParams

pytestmark = pytest.mark.model

PROMPTS = [
    "Describe a library in one sentence.",
    "Write a short blurb for a book about the history of coffee.",
    "Name three rivers in Europe.",
    "Explain what makes a thriller page-turning.",
    "Pitch a self-help book about slow mornings.",
]
GREEDY = GenerationParams(max_tokens=24)


@pytest.fixture(scope="module")
def llm(tiny_adapter: Path):
    """An own instance (adapters must not leak into the shared fixture), with the tiny adapter loaded."""
    from gravity_core.llm.embedded import EmbeddedLLM

    own = EmbeddedLLM(LLMEndpoint(max_tokens=24, max_batch_size=8))
    own.load_adapter("tiny", str(tiny_adapter))
    return own


def convo(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def alone(llm, prompts: list[str], adapters: list[str | None]) -> list[str]:
    return [llm.chat(convo(p), GREEDY, adapter=a).text for p, a in zip(prompts, adapters, strict=True)]


def staggered(llm, prompts: list[str], adapters: list[str | None], first: int = 2) -> list[str]:
    """Submit ``first`` requests, wait until they are decoding, then submit the rest while they run."""
    engine = llm.engine
    started = threading.Event()
    handles = [
        llm.generator.submit(convo(p), GREEDY, a, on_delta=lambda _piece: started.set())
        for p, a in zip(prompts[:first], adapters[:first], strict=True)
    ]
    assert started.wait(120)
    joined_before = engine.stats.joined_running
    handles += [
        llm.generator.submit(convo(p), GREEDY, a)
        for p, a in zip(prompts[first:], adapters[first:], strict=True)
    ]
    texts = [h.result(300).text for h in handles]
    assert engine.stats.joined_running > joined_before  # some arrived while others were decoding
    return texts


@pytest.mark.parametrize(
    "adapters",
    [
        pytest.param([None] * 5, id="base"),
        pytest.param(["tiny"] * 5, id="adapter"),
        pytest.param([None, "tiny", None, "tiny", "tiny"], id="mixed"),
    ],
)
def test_continuous_greedy_equals_one_at_a_time(llm, adapters: list[str | None]) -> None:
    reference = alone(llm, PROMPTS, adapters)
    assert staggered(llm, PROMPTS, adapters) == reference
    # and as one chat_batch call (all arrive together)
    assert [c.text for c in llm.chat_batch([convo(p) for p in PROMPTS], GREEDY, adapters)] == reference


def test_the_adapter_changes_the_output_it_is_asked_for(llm) -> None:
    base = llm.chat(convo(PROMPTS[0]), GREEDY)
    tuned = llm.chat(convo(PROMPTS[0]), GREEDY, adapter="tiny")
    assert tuned.adapter == "tiny" and base.adapter is None
    assert tuned.text != base.text  # the randomly initialised adapter moves the output


def test_stream_joins_a_running_batch_and_matches_chat(llm) -> None:
    expected = llm.chat(convo(PROMPTS[1]), GREEDY).text
    others = [llm.generator.submit(convo(p), GREEDY) for p in PROMPTS[2:]]
    events = list(llm.stream_chat(convo(PROMPTS[1]), GREEDY))
    final = events[-1].final
    assert final is not None and final.text == expected
    assert "".join(e.delta for e in events[:-1]).strip() == expected
    assert len(events) > 3  # streamed piece by piece, not in one lump
    for h in others:
        h.result(300)


def test_closing_a_stream_cancels_its_sequence(llm) -> None:
    stream = llm.stream_chat(convo(PROMPTS[3]), GenerationParams(max_tokens=200))
    assert next(stream).delta
    stream.close()
    llm.chat(convo(PROMPTS[0]), GenerationParams(max_tokens=2))
    # had the 200-token row not left the batch, it would still be running after this short request
    assert llm.engine.running() == 0 and llm.engine.depth() == 0


def test_shared_prompt_prefix_is_reused_without_changing_outputs(llm) -> None:
    preamble = (
        "You are a reader who loves slow, character-driven novels about families, quiet places and memory. "
        "You dislike violence, cliffhangers and books that rush. You read mostly in the evening. " * 3
    )
    prompts = [preamble + f"Describe the book number {i} for this reader in one sentence." for i in (1, 2)]
    engine = llm.engine
    engine.forget_prefixes()
    cold = alone(llm, prompts[:1], [None])
    hits, reused = engine.prefix_cache.stats.hits, engine.prefix_cache.stats.reused_tokens
    warm = alone(llm, prompts, [None, None])
    assert engine.prefix_cache.stats.hits > hits
    assert engine.prefix_cache.stats.reused_tokens - reused >= 2 * engine.chunk
    engine.forget_prefixes()
    assert warm == [cold[0], alone(llm, prompts[1:], [None])[0]]


def test_seeded_sampling_does_not_depend_on_batch_company(llm) -> None:
    sampled = GenerationParams(max_tokens=16, temperature=1.0, seed=11)
    alone_text = llm.chat(convo(PROMPTS[0]), sampled).text
    together = llm.chat_batch([convo(PROMPTS[0]), convo(PROMPTS[2])], sampled)
    assert together[0].text == alone_text
