"""Micro-batching logic on a scripted LLM: grouping, isolation of failures, deadlines, draining."""

import threading
import time

import pytest

from gravity_core.errors import InvalidInput, Unavailable
from gravity_core.grpc.server import DeadlineExceeded
from gravity_core.llm import GenerationParams
from gravity_generator.batching import MicroBatcher
from gravity_generator.completion import Call, DirectCompleter, user_message

GREEDY = GenerationParams(max_tokens=8)


def submit_concurrently(batcher: MicroBatcher, calls: list[Call]) -> list[object]:
    results: list[object] = [None] * len(calls)

    def one(i: int) -> None:
        results[i] = batcher.complete([calls[i]])[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_concurrent_requests_share_batches_and_keep_their_own_answers(fake_llm) -> None:
    llm = fake_llm(delay_s=0.2)
    batcher = MicroBatcher(llm, window_s=0.1, max_batch=8)
    try:
        calls = [Call(user_message(f"prompt {i}"), GREEDY, adapter=None) for i in range(8)]
        results = submit_concurrently(batcher, calls)
    finally:
        batcher.close()
    assert [r.text for r in results] == [f"out:prompt {i}" for i in range(8)]
    assert len(llm.batches) < 8 and batcher.stats.mean_batch > 1.0
    assert max(len(b) for b in llm.batches) <= 8


def test_different_sampling_params_never_share_a_batch(fake_llm) -> None:
    llm = fake_llm(delay_s=0.05)
    batcher = MicroBatcher(llm, window_s=0.2, max_batch=8)
    sampled = GenerationParams(max_tokens=8, temperature=0.7, seed=1)
    try:
        calls = [Call(user_message(f"g{i}"), GREEDY) for i in range(3)] + [
            Call(user_message(f"s{i}"), sampled) for i in range(3)
        ]
        submit_concurrently(batcher, calls)
    finally:
        batcher.close()
    for batch in llm.batches:
        assert len({prompt[0] for prompt, _ in batch}) == 1  # all "g..." or all "s..."


def test_one_bad_call_fails_alone(fake_llm) -> None:
    llm = fake_llm(delay_s=0.0)
    batcher = MicroBatcher(llm, window_s=0.2, max_batch=8)
    try:
        calls = [
            Call(user_message("fine one"), GREEDY),
            Call(user_message("boom"), GREEDY),
            Call(user_message("fine two"), GREEDY),
        ]
        results = submit_concurrently(batcher, calls)
    finally:
        batcher.close()
    assert results[0].text == "out:fine one" and results[2].text == "out:fine two"
    assert isinstance(results[1], InvalidInput)


def test_expired_and_cancelled_calls_cost_nothing(fake_llm) -> None:
    llm = fake_llm(delay_s=0.0)
    batcher = MicroBatcher(llm, window_s=0.0, max_batch=4)
    try:
        late = Call(user_message("late"), GREEDY, deadline=time.monotonic() - 1)
        gone = Call(user_message("gone"), GREEDY, alive=lambda: False)
        out = batcher.complete([late, gone])
    finally:
        batcher.close()
    assert all(isinstance(o, DeadlineExceeded) for o in out)
    assert llm.batches == [] and batcher.stats.dropped == 2


def test_close_drains_queued_calls_then_refuses_new_ones(fake_llm) -> None:
    llm = fake_llm(delay_s=0.1)
    batcher = MicroBatcher(llm, window_s=0.0, max_batch=1)
    results: list[object] = []
    worker = threading.Thread(
        target=lambda: results.extend(
            batcher.complete([Call(user_message(f"q{i}"), GREEDY) for i in range(3)])
        )
    )
    worker.start()
    time.sleep(0.05)
    batcher.close(drain_s=10)
    worker.join(10)
    assert [r.text for r in results] == ["out:q0", "out:q1", "out:q2"]
    with pytest.raises(Unavailable):
        batcher.complete([Call(user_message("after"), GREEDY)])


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
