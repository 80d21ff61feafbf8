"""The peer benchmark's rounds (bench.alternate, bench.Paired): who goes first, and what the ratio pools."""

from __future__ import annotations

import pytest

from gravity_generator.bench import LoadResult, Paired, alternate


def _result(label: str, tokens: int, seconds: float) -> LoadResult:
    return LoadResult(label, requests=2, seconds=seconds, completion_tokens=tokens, latencies_ms=[1.0, 2.0])


def test_rounds_alternate_which_side_goes_first() -> None:
    order: list[str] = []

    def side(name: str):
        def run(tag: str) -> LoadResult:
            order.append(name + tag)
            return _result(name + tag, 100, 10.0)

        return run

    paired = alternate("w", 3, side("ours"), side("peer"))
    assert order == ["ours #1", "peer #1", "peer #2", "ours #2", "ours #3", "peer #3"]
    assert [r.label for r in paired.ours] == ["ours #1", "ours #2", "ours #3"]
    assert [r.label for r in paired.theirs] == ["peer #1", "peer #2", "peer #3"]


def test_one_round_carries_no_tag() -> None:
    paired = alternate(
        "w", 1, lambda tag: _result("ours" + tag, 1, 1.0), lambda tag: _result("p" + tag, 1, 1.0)
    )
    assert [r.label for r in paired.ours + paired.theirs] == ["ours", "p"]


def test_the_ratio_pools_tokens_and_seconds_and_each_round_keeps_its_own() -> None:
    paired = Paired("w")
    paired.ours += [_result("a", 300, 10.0), _result("b", 300, 30.0)]  # 30 and 10 tok/s; pooled 15
    paired.theirs += [_result("c", 200, 10.0), _result("d", 200, 10.0)]  # 20 and 20; pooled 20
    assert paired.ratio == pytest.approx(0.75)  # not the mean of the round ratios (1.0)
    assert paired.round_ratios() == pytest.approx([1.5, 0.5])
    assert paired.row() == ("w", 15.0, 20.0, "0.75x", "1.50 / 0.50")
