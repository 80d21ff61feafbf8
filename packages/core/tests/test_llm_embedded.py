"""The embedded backend on the real SmolLM2-135M-Instruct."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gravity_core.errors import NotFound
from gravity_core.llm import GenerationParams
from gravity_core.llm.cache import CachedLLM, ResponseCache

pytestmark = pytest.mark.model


def test_generates_text(embedded_llm) -> None:
    c = embedded_llm.chat([{"role": "user", "content": "Name one colour."}], GenerationParams(max_tokens=12))
    assert c.text and c.completion_tokens > 0 and c.prompt_tokens > 5
    assert c.finish_reason in ("stop", "length")


def test_stream_reports_why_it_ended_like_chat(embedded_llm) -> None:
    msgs = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    params = GenerationParams(max_tokens=4)
    events = list(embedded_llm.stream_chat(msgs, params))
    final = events[-1].final
    assert final is not None and "".join(e.delta for e in events[:-1]).strip() == final.text
    # the same greedy generation, cut at max_tokens: both calls say so
    assert final.finish_reason == embedded_llm.chat(msgs, params).finish_reason == "length"


def test_batch_matches_single_greedy(embedded_llm) -> None:
    convos = [[{"role": "user", "content": q}] for q in ("Say hello.", "Count to three.", "What is a book?")]
    params = GenerationParams(max_tokens=10)
    single = [embedded_llm.chat(c, params).text for c in convos]
    batched = [c.text for c in embedded_llm.chat_batch(convos, params)]
    assert len(batched) == 3
    # left padding must not change greedy outputs beyond float noise on at least most rows
    assert sum(a == b for a, b in zip(single, batched, strict=True)) >= 2


def test_seeded_sampling_is_reproducible(embedded_llm) -> None:
    msgs = [{"role": "user", "content": "Invent a name for a cat."}]
    params = GenerationParams(max_tokens=12, temperature=1.0, seed=7)
    assert embedded_llm.chat(msgs, params).text == embedded_llm.chat(msgs, params).text


def test_scores_choices_as_a_distribution(embedded_llm) -> None:
    s = embedded_llm.score_choices(
        [{"role": "user", "content": "Is fire hot? Answer yes or no."}], ["yes", "no"]
    )
    assert s.method == "logprobs" and s.usable
    assert abs(sum(s.probabilities) - 1.0) < 1e-5
    assert s.best in ("yes", "no")
    likert = embedded_llm.score_choices(
        [{"role": "user", "content": "Rate 1 to 5 how fun a party is. Answer with a digit."}],
        ["1", "2", "3", "4", "5"],
    )
    assert 1.0 <= likert.expected([1, 2, 3, 4, 5]) <= 5.0


def test_shared_prefix_equals_independent_scoring(embedded_llm) -> None:
    context = [
        {"role": "user", "content": "Reviews: I pray every morning and my family comes first.\nStatement: "}
    ]
    statements = ["Religion is very important.", "Leisure time is important.", "Men make better leaders."]
    choices = ["support", "oppose", "neutral"]
    shared = embedded_llm.score_choices_shared_prefix(context, statements, choices)
    single = [
        embedded_llm.score_choices([{"role": "user", "content": context[0]["content"] + s}], choices)
        for s in statements
    ]
    for a, b in zip(shared, single, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=2e-3)


@pytest.mark.slow  # over a minute on 2 cores; a smaller real test of the same kind stays in the default suite
def test_long_prompt_is_truncated_not_rejected(embedded_llm) -> None:
    long_text = "The reader loved long sagas. " * 3000
    c = embedded_llm.chat(
        [{"role": "user", "content": long_text + "\nSummarize in one line."}], GenerationParams(max_tokens=8)
    )
    assert c.truncated_prompt and c.prompt_tokens <= embedded_llm.context_window


def test_unknown_adapter_is_not_found(embedded_llm) -> None:
    with pytest.raises(NotFound) as err:
        embedded_llm.chat([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=2), adapter="nope")
    assert err.value.field == "adapter"


def test_response_cache_makes_reruns_free(embedded_llm, tmp_path: Path) -> None:
    cached = CachedLLM(embedded_llm, ResponseCache(tmp_path / "cache.sqlite"))
    msgs = [{"role": "user", "content": "Name a river."}]
    params = GenerationParams(max_tokens=8)
    first = cached.chat(msgs, params)
    before = embedded_llm.usage.completion_tokens
    second = cached.chat(msgs, params)
    assert second.cached and second.text == first.text
    assert embedded_llm.usage.completion_tokens == before  # no model work on the hit
    sampled = GenerationParams(max_tokens=8, temperature=1.0)  # unseeded sampling is never cached
    assert not cached.chat(msgs, sampled).cached and not cached.chat(msgs, sampled).cached
    s1 = cached.score_choices(msgs, ["yes", "no"])
    s2 = cached.score_choices(msgs, ["yes", "no"])
    assert s1.probabilities == s2.probabilities
    assert s1.logprobs and s2.logprobs == s1.logprobs  # the log-probabilities survive the cache


def test_adapters_per_request_and_mixed_batches(tiny_adapter: Path) -> None:
    from gravity_core.config import LLMEndpoint
    from gravity_core.llm.embedded import EmbeddedLLM

    llm = EmbeddedLLM(
        LLMEndpoint(max_tokens=8)
    )  # own instance: adapters must not leak into the shared fixture
    msgs = [{"role": "user", "content": "Describe a library in one sentence."}]
    params = GenerationParams(max_tokens=8)
    base = llm.chat(msgs, params).text
    llm.load_adapter("tiny", str(tiny_adapter))
    tuned = llm.chat(msgs, params, adapter="tiny")
    assert tuned.adapter == "tiny"
    assert llm.chat(msgs, params).text == base  # base model unaffected by the loaded adapter
    mixed = llm.chat_batch([msgs, msgs], params, adapters=[None, "tiny"])
    assert mixed[0].text == base and mixed[1].text == tuned.text
    s_base = llm.score_choices(msgs, ["yes", "no"])
    s_tiny = llm.score_choices(msgs, ["yes", "no"], adapter="tiny")
    assert s_base.probabilities != s_tiny.probabilities
    llm.unload_adapter("tiny")
    with pytest.raises(NotFound):
        llm.chat(msgs, params, adapter="tiny")


def test_an_adapter_loaded_by_two_owners_stays_until_both_unload(tiny_adapter: Path) -> None:
    """Two generators in one process share its model: the first to stop must not take away the adapter
    the other still serves (the generator tests once failed with "adapter 'gravity-test' is not loaded"
    when test_service.py ran before test_cli.py)."""
    from gravity_core.config import LLMEndpoint
    from gravity_core.llm.embedded import EmbeddedLLM

    llm = EmbeddedLLM(LLMEndpoint(max_tokens=4))
    msgs = [{"role": "user", "content": "Is a library quiet? Answer yes or no."}]
    llm.load_adapter("tiny", str(tiny_adapter))
    llm.load_adapter("tiny", str(tiny_adapter))
    tuned = llm.score_choices(msgs, ["yes", "no"], adapter="tiny").logprobs

    llm.unload_adapter("tiny")
    assert llm.adapters == {"tiny": str(tiny_adapter)}
    assert llm.score_choices(msgs, ["yes", "no"], adapter="tiny").logprobs == pytest.approx(tuned, abs=1e-4)

    llm.unload_adapter("tiny")
    assert llm.adapters == {}
    with pytest.raises(NotFound):
        llm.score_choices(msgs, ["yes", "no"], adapter="tiny")
    with pytest.raises(NotFound):
        llm.unload_adapter("tiny")


def test_an_adapter_applies_right_after_a_base_model_decode(tiny_adapter: Path) -> None:
    """A base-model decode step switches the LoRA layers off; a scoring or logprob call with an adapter
    right after it must switch them on again (CI once saw the adapter's scores equal the base model's)."""
    from gravity_core.config import LLMEndpoint
    from gravity_core.llm.embedded import EmbeddedLLM

    llm = EmbeddedLLM(LLMEndpoint(max_tokens=4))
    llm.reuse_prefix = False  # every score encodes the whole prompt on the model as it is
    msgs = [{"role": "user", "content": "Is a library quiet? Answer yes or no."}]
    params = GenerationParams(max_tokens=4)
    llm.load_adapter("tiny", str(tiny_adapter))
    llm.chat(msgs, params, adapter="tiny")
    reference = llm.score_choices(msgs, ["yes", "no"], adapter="tiny").logprobs
    _, reference_tokens = llm.chat_with_logprobs(msgs, params, adapter="tiny")
    base = llm.score_choices(msgs, ["yes", "no"]).logprobs
    assert base != pytest.approx(reference, abs=1e-3)

    llm.chat(msgs, params)  # base-model decode steps
    assert llm.score_choices(msgs, ["yes", "no"], adapter="tiny").logprobs == pytest.approx(
        reference, abs=1e-4
    )
    llm.chat(msgs, params)
    _, tokens = llm.chat_with_logprobs(msgs, params, adapter="tiny")
    assert [t[1] for t in tokens] == pytest.approx([t[1] for t in reference_tokens], abs=1e-4)
    llm.chat(msgs, params)
    assert llm.score_choices(msgs, ["yes", "no"]).logprobs == pytest.approx(base, abs=1e-4)


def test_single_token_choices_share_one_row_per_question(embedded_llm) -> None:
    context = [
        {"role": "user", "content": "You love quiet poetry.\nRate from 1 to 5 how much you would enjoy: "}
    ]
    books = ["a loud action thriller.", "a book of haiku about the sea.", "a tax law manual."]
    digits = ["1", "2", "3", "4", "5"]
    calls = embedded_llm.usage.calls
    shared = embedded_llm.score_choices_shared_prefix(context, books, digits, prefill="Rating: ")
    assert embedded_llm.usage.calls == calls + 1
    single = [
        embedded_llm.score_choices(
            [{"role": "user", "content": context[0]["content"] + b}], digits, prefill="Rating: "
        )
        for b in books
    ]
    for a, b in zip(shared, single, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=2e-3)


def test_consecutive_calls_reuse_the_encoded_prefix(embedded_llm) -> None:
    history = "Reviews:\n" + "\n".join(
        f"{i}. A quiet village mystery, book {i}; I loved it." for i in range(25)
    )
    questions = [
        [{"role": "user", "content": f"{history}\nIs the reader calm? Answer yes or no.\n"}],
        [{"role": "user", "content": f"{history}\nDoes the reader like mysteries? Answer yes or no.\n"}],
    ]
    choices = ["yes", "no"]

    def run() -> tuple[list[tuple[float, ...]], int]:
        before = embedded_llm.usage.prompt_tokens
        probs = [embedded_llm.score_choices(q, choices).probabilities for q in questions]
        return probs, embedded_llm.usage.prompt_tokens - before

    embedded_llm.reuse_prefix = False
    try:
        cold, cold_tokens = run()
    finally:
        embedded_llm.reuse_prefix = True
    warm, warm_tokens = run()
    for a, b in zip(warm, cold, strict=True):
        assert a == pytest.approx(b, abs=2e-3)
    # the second question re-encodes only what follows the shared history
    history_tokens = embedded_llm.count_tokens(history)
    assert cold_tokens - warm_tokens >= history_tokens * 0.9


def test_a_long_scored_context_is_kept_for_generation_that_starts_the_same_way(embedded_llm) -> None:
    """A long new scoring context is encoded by the generation engine, so a prompt that opens with it (the
    profiler's user summary after a reader's questions) skips those chunks; the scores are what encoding
    on the scorer's own path gives, and the generated text is what it is without the cache."""
    history = "Reviews:\n" + "\n".join(
        f"{i}. A slow family saga, volume {i}; the garden scenes stayed with me." for i in range(30)
    )
    scored = [{"role": "user", "content": f"{history}\nIs the reader patient? Answer yes or no.\n"}]
    summary = [{"role": "user", "content": f"{history}\nSummarise this reader in one sentence."}]
    params = GenerationParams(max_tokens=12)
    engine = embedded_llm.engine
    engine.forget_prefixes()
    embedded_llm.scorer.forget_prefix()
    fresh = embedded_llm.chat(summary, params).text
    engine.forget_prefixes()

    embedded_llm.reuse_prefix = False  # the scorer's own path, the whole prompt at once
    try:
        own = embedded_llm.score_choices(scored, ["yes", "no"]).probabilities
    finally:
        embedded_llm.reuse_prefix = True
    assert len(engine.prefix_cache) == 0
    via_engine = embedded_llm.score_choices(scored, ["yes", "no"]).probabilities
    assert via_engine == pytest.approx(own, abs=2e-3)
    assert len(engine.prefix_cache) == 1

    reused = engine.prefix_cache.stats.reused_tokens
    assert embedded_llm.chat(summary, params).text == fresh
    history_tokens = embedded_llm.count_tokens(history)
    assert history_tokens > 4 * engine.chunk
    assert engine.prefix_cache.stats.reused_tokens - reused >= history_tokens - engine.chunk


def test_choice_scores_match_a_plain_forward_pass(embedded_llm) -> None:
    """Packed rows over a shared prefix give what scoring every full text from scratch gives."""
    import torch

    context = [{"role": "user", "content": "Reviews: I pray daily and adore my grandchildren.\nQuestion: "}]
    suffixes = ["Is the reader religious?", "Does the reader dislike children? Answer briefly."]
    choices = ["yes", "no", "not sure"]  # one multi-token choice
    packed = embedded_llm.score_choices_shared_prefix(context, suffixes, choices)
    embedded_llm._pack_rows = False
    try:
        padded = embedded_llm.score_choices_shared_prefix(context, suffixes, choices)
    finally:
        embedded_llm._pack_rows = True
    tok = embedded_llm.tokenizer
    for suffix, got, other in zip(suffixes, packed, padded, strict=True):
        text = embedded_llm.render([{"role": "user", "content": context[0]["content"] + suffix}])
        n_prompt = len(tok(text, add_special_tokens=False)["input_ids"])
        totals = []
        for choice in choices:
            ids = tok(text + choice, add_special_tokens=False)["input_ids"]
            with torch.inference_mode():
                logits = embedded_llm.base_model(input_ids=torch.tensor([ids])).logits[0].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            totals.append(sum(float(logprobs[p - 1, ids[p]]) for p in range(n_prompt, len(ids))))
        reference = torch.softmax(torch.tensor(totals), dim=0).tolist()
        assert got.probabilities == pytest.approx(reference, abs=2e-3)
        assert other.probabilities == pytest.approx(reference, abs=2e-3)
        # the unnormalised sums are the choices' own log-probabilities
        assert got.logprobs == pytest.approx(totals, abs=2e-2)


def _load_in_a_new_process(then: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Load the embedded model in a new Python process (its thread count and console are its own), run
    ``then`` there, and return what it printed."""
    code = (
        "import torch\n"
        "from gravity_core.config import LLMEndpoint\n"
        "from gravity_core.llm.embedded.loading import load\n"
        "load(LLMEndpoint(backend='embedded', model='smollm2-135m'))\n" + then
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "GRAVITY_LOGGING__LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.mark.model
def test_threads_0_keeps_the_processes_own_thread_count() -> None:
    """`gravity demo` gives each service its share of the cores through OMP_NUM_THREADS; loading a model with
    the default `threads = 0` must keep it (a fixed half of the cores starved services computing alone)."""
    out = _load_in_a_new_process("print(torch.get_num_threads())\n", OMP_NUM_THREADS="2")
    assert out.stdout.strip().splitlines()[-1] == "2"  # the old default, half of 2 cores, gave 1


@pytest.mark.model
def test_loading_draws_no_progress_bar_and_leaves_the_setting_as_it_was() -> None:
    """The demo's recovery check loads the model in the demo's own process: transformers' weight-loading bar
    showed among its console lines (and in every service's JSON log)."""
    out = _load_in_a_new_process(
        "from transformers.utils import logging\nprint(logging.is_progress_bar_enabled())\n"
    )
    assert "Loading weights" not in out.stderr
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_loading_and_unloading_adapters_warns_about_nothing_of_ours_to_fix(tiny_adapter: Path) -> None:
    """peft asks the model whether it checkpoints gradients through a name transformers 5 deprecates, and
    notes which adapter it makes active when the active one is deleted: every adapter the generator
    hot-loaded or dropped wrote one of those warnings into its JSON log."""
    import warnings

    from gravity_core.config import LLMEndpoint
    from gravity_core.llm.embedded import EmbeddedLLM

    llm = EmbeddedLLM(LLMEndpoint(max_tokens=8))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", UserWarning)
        llm.load_adapter("tiny", str(tiny_adapter))
        llm.load_adapter("tiny-2", str(tiny_adapter))  # the second goes through PeftModel.load_adapter
        llm.unload_adapter("tiny")  # the active one
        llm.unload_adapter("tiny-2")
