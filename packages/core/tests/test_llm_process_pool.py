"""The embedded model in worker processes (llm/process_pool.py): the same answers as in-process, calls from
several threads served by different workers at once, adapters in every worker, a dead worker replaced."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import gravity_core.llm as llm_registry
from gravity_core.config import LLMEndpoint
from gravity_core.errors import NotFound, Unavailable
from gravity_core.llm import make_llm, process_pool
from gravity_core.llm.embedded import EmbeddedLLM
from gravity_core.llm.process_pool import ProcessPoolLLM, worker_threads
from gravity_core.llm.types import GenerationParams

QUESTION = [{"role": "user", "content": "Is a long walk in the rain pleasant? Answer yes or no."}]
SUFFIXES = ["", " Think of a cold day."]
PARAMS = GenerationParams(max_tokens=8)


@pytest.fixture(scope="module")
def pool() -> ProcessPoolLLM:
    llm = ProcessPoolLLM(LLMEndpoint(processes=2, threads=2))
    yield llm
    llm.close()


def _pids(llm: ProcessPoolLLM) -> list[int]:
    return [w.process.pid for w in llm._workers if w.process.pid is not None]


def test_each_worker_gets_its_share_of_the_cores() -> None:
    assert worker_threads(LLMEndpoint(processes=2, threads=4)) == 2
    assert worker_threads(LLMEndpoint(processes=3, threads=2)) == 1


def test_make_llm_serves_an_endpoint_with_processes_from_a_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    monkeypatch.setattr(process_pool, "ProcessPoolLLM", lambda endpoint: built.append(endpoint.processes))
    monkeypatch.setattr(llm_registry, "_embedded", {})  # what the stand-in returns must not outlive the test
    make_llm(LLMEndpoint(processes=3, max_tokens=7), cache=None)
    assert built == [3]


def test_the_pool_answers_as_the_model_in_process_does(pool: ProcessPoolLLM) -> None:
    local = EmbeddedLLM(LLMEndpoint())
    assert (pool.info.backend, pool.info.context_window) == ("embedded", local.context_window)
    expected = local.score_choices_shared_prefix(QUESTION, SUFFIXES, ("yes", "no"))
    got = pool.score_choices_shared_prefix(QUESTION, SUFFIXES, ("yes", "no"))
    for a, b in zip(got, expected, strict=True):
        assert a.choices == b.choices and a.method == b.method
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-4)
    assert [c.text for c in pool.chat_batch([QUESTION], PARAMS)] == [
        c.text for c in local.chat_batch([QUESTION], PARAMS)
    ]
    assert pool.count_tokens("a long walk") == local.count_tokens("a long walk")


def test_calls_from_two_threads_run_in_two_workers_at_once(pool: ProcessPoolLLM) -> None:
    """Each call holds its worker until it answers, so two calls in flight at the same moment (the barrier
    holds both threads until each has taken a worker) must be on two different processes."""
    seen: list[int] = []
    both_taken = threading.Barrier(2, timeout=120)
    original = pool._take

    def take() -> object:
        worker = original()
        while worker is None:
            worker = original()
        seen.append(worker.process.pid)
        both_taken.wait()
        return worker

    pool._take = take  # type: ignore[method-assign]
    try:
        calls_before = pool.usage.calls
        threads = [
            threading.Thread(target=pool.score_choices, args=(QUESTION, ("yes", "no"))) for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    finally:
        pool._take = original  # type: ignore[method-assign]
    assert sorted(seen) == sorted(_pids(pool))
    assert pool.usage.calls == calls_before + 2  # the workers' counters come back to the pool


def test_an_adapter_is_loaded_in_every_worker(pool: ProcessPoolLLM, tiny_adapter: Path) -> None:
    base = pool.score_choices(QUESTION, ("yes", "no"))
    pool.load_adapter("tiny", str(tiny_adapter))
    try:
        assert pool.info.adapters == ["tiny"]
        answers = [pool.score_choices(QUESTION, ("yes", "no"), adapter="tiny") for _ in range(4)]
        # the random adapter moves the answer, and every worker gives the same one
        assert answers[0].probabilities != pytest.approx(base.probabilities, abs=1e-6)
        for a in answers[1:]:
            assert a.probabilities == pytest.approx(answers[0].probabilities, abs=1e-5)
    finally:
        pool.unload_adapter("tiny")
    assert pool.info.adapters == []


def test_a_worker_that_dies_fails_its_call_and_is_started_again_with_its_adapters(
    tiny_adapter: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = ProcessPoolLLM(LLMEndpoint(processes=2, threads=2))
    try:
        llm.load_adapter("tiny", str(tiny_adapter))
        expected = llm.score_choices(QUESTION, ("yes", "no"), adapter="tiny")
        victim = llm._workers[0]
        old_pid = victim.process.pid
        os.kill(old_pid, 9)
        victim.process.join(timeout=30)
        failures = 0
        # the next two calls take both workers, so one of them lands on the dead one
        for _ in range(2):
            try:
                llm.score_choices(QUESTION, ("yes", "no"), adapter="tiny")
            except Unavailable as exc:
                assert "exited" in str(exc)
                failures += 1
        assert failures == 1
        deadline = time.monotonic() + 300
        while llm._idle.qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert llm._idle.qsize() == 2, "the dead worker was not started again"
        # once restarted, every worker answers with the adapter again
        answers = [llm.score_choices(QUESTION, ("yes", "no"), adapter="tiny") for _ in range(4)]
        assert victim.process.pid != old_pid and victim.alive()
        for a in answers:
            assert a.probabilities == pytest.approx(expected.probabilities, abs=1e-5)

        # workers that cannot be started again: a call fails at once instead of waiting for one forever
        def cannot_start(self: object, holds: object) -> None:
            raise RuntimeError("no memory for another model")

        monkeypatch.setattr(process_pool._Worker, "restart", cannot_start)
        for worker in llm._workers:
            os.kill(worker.process.pid, 9)
            worker.process.join(timeout=30)
        for _ in range(2):
            with pytest.raises(Unavailable, match="exited"):
                llm.score_choices(QUESTION, ("yes", "no"))
        with pytest.raises(Unavailable, match="could not be started again"):
            llm.score_choices(QUESTION, ("yes", "no"))
    finally:
        llm.close()


def test_a_worker_error_reaches_the_caller_as_the_same_typed_error(pool: ProcessPoolLLM) -> None:
    """A typed error raised in a worker crosses the pipe with its type and fields (errors.py pickles them as
    built), and the worker stays in the pool."""
    for _ in range(len(pool._workers)):
        with pytest.raises(NotFound) as raised:
            pool.score_choices(QUESTION, ("yes", "no"), adapter="never-loaded")
        assert raised.value.field == "adapter" and "never-loaded" in raised.value.message
    assert pool._idle.qsize() == len(pool._workers)
    assert pool.score_choices(QUESTION, ("yes", "no")).method == "logprobs"
