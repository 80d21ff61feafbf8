"""The service's completer on a scripted LLM: calls in flight, isolation of failures, deadlines, draining.

Batching itself happens in the embedded model's continuous-batching engine (tested on the real model in
packages/core/tests/test_llm_continuous.py and here in test_continuous_service.py).
"""

import threading
import time

import pytest

from gravity_core.errors import InvalidInput, Unavailable
from gravity_core.grpc.server import DeadlineExceeded
from gravity_core.llm import GenerationParams
from gravity_generator.batching import ContinuousCompleter
from gravity_generator.completion import Call, DirectCompleter, user_message

GREEDY = GenerationParams(max_tokens=8)


def submit_concurrently(completer: ContinuousCompleter, calls: list[Call]) -> list[object]:
    results: list[object] = [None] * len(calls)

    def one(i: int) -> None:
        results[i] = completer.complete([calls[i]])[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


class _Counting:
    """Wraps a fake LLM and records how many calls were inside it at once."""

    def __init__(self, llm) -> None:
        self.inner = llm
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def chat_batch(self, conversations, params=None, adapters=None):
        with self._lock:
            self.now += len(conversations)
            self.peak = max(self.peak, self.now)
        try:
            return self.inner.chat_batch(conversations, params, adapters)
        finally:
            with self._lock:
                self.now -= len(conversations)


def test_concurrent_requests_run_together_up_to_max_batch(fake_llm) -> None:
    llm = _Counting(fake_llm(delay_s=0.2))
    completer = ContinuousCompleter(llm, max_batch=3)
    try:
        calls = [Call(user_message(f"prompt {i}"), GREEDY, adapter=None) for i in range(8)]
        results = submit_concurrently(completer, calls)
    finally:
        completer.close()
    assert [r.text for r in results] == [f"out:prompt {i}" for i in range(8)]
    assert llm.peak == 3  # never more than max_batch in the model, and the cap was reached


def test_one_at_a_time_when_max_batch_is_one(fake_llm) -> None:
    llm = _Counting(fake_llm(delay_s=0.05))
    completer = ContinuousCompleter(llm, max_batch=1)
    try:
        submit_concurrently(completer, [Call(user_message(f"q{i}"), GREEDY) for i in range(4)])
    finally:
        completer.close()
    assert llm.peak == 1


def test_different_sampling_params_go_to_the_model_as_separate_groups(fake_llm) -> None:
    llm = fake_llm(delay_s=0.0)
    completer = ContinuousCompleter(llm, max_batch=8)
    sampled = GenerationParams(max_tokens=8, temperature=0.7, seed=1)
    calls = [Call(user_message(f"g{i}"), GREEDY) for i in range(3)] + [
        Call(user_message(f"s{i}"), sampled) for i in range(3)
    ]
    out = completer.complete(calls)
    assert [o.text for o in out] == [f"out:{c.messages[0]['content']}" for c in calls]
    for batch in llm.batches:
        assert len({prompt[0] for prompt, _ in batch}) == 1  # all "g..." or all "s..."


def test_one_bad_call_fails_alone(fake_llm) -> None:
    llm = fake_llm(delay_s=0.0)
    completer = ContinuousCompleter(llm, max_batch=8)
    try:
        calls = [
            Call(user_message("fine one"), GREEDY),
            Call(user_message("boom"), GREEDY),
            Call(user_message("fine two"), GREEDY),
        ]
        results = completer.complete(calls)
    finally:
        completer.close()
    assert results[0].text == "out:fine one" and results[2].text == "out:fine two"
    assert isinstance(results[1], InvalidInput)


def test_expired_and_cancelled_calls_cost_nothing(fake_llm) -> None:
    llm = fake_llm(delay_s=0.0)
    completer = ContinuousCompleter(llm, max_batch=4)
    try:
        late = Call(user_message("late"), GREEDY, deadline=time.monotonic() - 1)
        gone = Call(user_message("gone"), GREEDY, alive=lambda: False)
        out = completer.complete([late, gone])
    finally:
        completer.close()
    assert all(isinstance(o, DeadlineExceeded) for o in out)
    assert llm.batches == [] and completer.stats.dropped == 2


def test_close_waits_for_running_calls_then_refuses_new_ones(fake_llm) -> None:
    llm = _Counting(fake_llm(delay_s=0.3))
    completer = ContinuousCompleter(llm, max_batch=1)
    results: list[object] = []
    worker = threading.Thread(
        target=lambda: results.extend(completer.complete([Call(user_message("q0"), GREEDY)]))
    )
    worker.start()
    while llm.peak == 0:  # the call is inside the model
        time.sleep(0.01)
    completer.close(drain_s=10)
    assert llm.now == 0  # close returned only after the running call left the model
    worker.join(10)
    assert [r.text for r in results] == ["out:q0"]
    with pytest.raises(Unavailable):
        completer.complete([Call(user_message("after"), GREEDY)])


def test_direct_completer_groups_by_params_and_isolates_failures(fake_llm) -> None:
    llm = fake_llm(delay_s=0.0)
    completer = DirectCompleter(llm)
    calls = [
        Call(user_message("a"), GREEDY),
        Call(user_message("boom"), GREEDY),
        Call(user_message("c"), GREEDY),
    ]
    out = completer.complete(calls)
    assert out[0].text == "out:a" and isinstance(out[1], InvalidInput) and out[2].text == "out:c"
    assert len(llm.batches[0]) == 3  # tried as one batch first
