"""The peer benchmark's rounds (who goes first, what the ratio pools) and the server-side time per request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler

import pytest
from gravity_testing import http_server, send_body

from gravity_generator.bench import (
    LoadResult,
    Paired,
    alternate,
    drive,
    parse_server_latency,
    path_cost,
    server_latency,
)


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


VLLM_METRICS = """# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="smollm2-135m"} 512.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="smollm2-135m"} 512.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="smollm2-135m"} 14914.725504398346
vllm:e2e_request_latency_seconds_count{engine="0",model_name="gravity-bench"} 8.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="gravity-bench"} 85.25
# HELP vllm:e2e_request_latency_seconds_created Histogram of e2e request latency in seconds.
vllm:e2e_request_latency_seconds_created{engine="0",model_name="smollm2-135m"} 1.79e+09
vllm:time_to_first_token_seconds_sum{engine="0",model_name="smollm2-135m"} 2202.9
"""


def test_the_server_latency_sums_every_label_set_and_nothing_else() -> None:
    total, count = parse_server_latency(VLLM_METRICS) or (0.0, 0.0)
    assert count == 520.0
    assert total == pytest.approx(14914.725504398346 + 85.25)
    assert parse_server_latency("gravity_rpc_seconds_sum 3.0\n") is None
    # the format allows a timestamp after the value, label values with spaces, and no labels at all
    stamped = (
        'vllm:e2e_request_latency_seconds_sum{model_name="a b"} 12.5 1796224570000\n'
        "vllm:e2e_request_latency_seconds_count 4 1796224570000\n"
    )
    assert parse_server_latency(stamped) == (12.5, 4.0)


@pytest.fixture
def metrics_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 answering /metrics with the next exposition of a list."""
    pages: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (pages.pop(0) if pages else "").encode()
            send_body(self, 200 if self.path == "/metrics" else 404, body, "text/plain")

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as root:
        yield f"{root}/v1", pages


def _exposition(total: float, count: float) -> str:
    return (
        f'vllm:e2e_request_latency_seconds_sum{{model_name="m"}} {total}\n'
        f'vllm:e2e_request_latency_seconds_count{{model_name="m"}} {count}\n'
    )


@contextmanager
def _sender() -> Iterator[Callable[[int], int]]:
    yield lambda tokens: tokens


def test_a_run_against_a_vllm_peer_carries_the_servers_own_time_per_request(
    metrics_server: tuple[str, list[str]],
) -> None:
    base_url, pages = metrics_server
    # read just before the clients start and just after the last answer: 16 requests took 48 s on the
    # server (a warm-up request made before the run, as _grpc_run makes one, stays outside the window)
    pages += [_exposition(100.0, 10), _exposition(148.0, 26)]
    result = drive("peer", [5] * 16, 4, _sender, base_url)
    assert result.completion_tokens == 80
    assert result.server_ms == pytest.approx(3000.0)
    assert not pages  # read exactly twice

    paired = Paired("generator over the peer (gRPC)")
    paired.ours.append(LoadResult("via", 16, 50.0, 1500, [3050.0] * 16, server_ms=3000.0))
    paired.theirs.append(LoadResult("direct", 16, 49.0, 1500, [3010.0] * 16, server_ms=3000.0))
    line = path_cost(paired)
    assert "generator over the peer +50 ms on 3000 ms (1.67%)" in line
    assert "directly +10 ms on 3000 ms (0.33%)" in line


def test_a_peer_without_the_metric_is_said_to_be_unmeasured(metrics_server: tuple[str, list[str]]) -> None:
    base_url, pages = metrics_server
    pages += ["gravity_rpc_seconds_sum 3.0\n", "gravity_rpc_seconds_sum 4.0\n"]
    result = drive("peer", [5, 5], 2, _sender, base_url)
    assert result.server_ms is None
    assert drive("no server asked", [5], 1, _sender).server_ms is None
    assert server_latency("http://127.0.0.1:9/v1") is None  # nothing listens: no figure, no error
    paired = Paired("w")
    paired.ours.append(result)
    paired.theirs.append(result)
    assert "not measured" in path_cost(paired)
