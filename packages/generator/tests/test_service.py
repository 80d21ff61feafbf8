"""The gRPC Generator on the embedded SmolLM2 with really trained adapters: every method, streaming,
validation, truncation and deadlines."""

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from gravity.v1 import generation_pb2, generation_pb2_grpc, profile_pb2
from gravity_core import names
from gravity_core.clients import GeneratorCallError, GeneratorClient, Sampling
from gravity_core.grpc import make_channel
from gravity_core.names import method_name

pytestmark = pytest.mark.model

ALL_METHODS = (
    "original",
    "base-rewrite",
    "demo-based",
    "user-summary",
    "lamp",
    "tri-agent",
    "user-sft",
    "pref-align",
    "gravity",
)


@pytest.fixture(scope="module")
def client(generator) -> GeneratorClient:
    with GeneratorClient(generator.target, timeout_s=600) as c:
        yield c


def test_list_methods_shows_every_method_and_its_adapter(client: GeneratorClient) -> None:
    methods = {method_name(m): m for m in client.list_methods()}
    assert tuple(methods) == ALL_METHODS
    for name in ("user-sft", "pref-align", "gravity"):
        assert methods[name].requires_adapter and methods[name].available
        assert methods[name].adapter == f"{name}-test"
    assert not methods["lamp"].requires_adapter and methods["lamp"].available


def test_every_method_answers_concurrently(client: GeneratorClient, generator, target_book) -> None:
    profile, book = target_book
    engine = generator.service.app.engine.writer.engine  # the embedded model's continuous batching
    steps_before, rows_before = engine.stats.decode_steps, engine.stats.decode_rows

    def ask(method: str) -> generation_pb2.PersonalizeResponse:
        return client.personalize(user_id=profile.user_id, parent_asin=book.parent_asin, method=method)

    with ThreadPoolExecutor(len(ALL_METHODS)) as pool:
        replies = dict(zip(ALL_METHODS, pool.map(ask, ALL_METHODS), strict=True))
    assert replies["original"].text == book.description and replies["original"].completion_tokens == 0
    for method, reply in replies.items():
        assert (
            method_name(reply) == method
            and reply.user_id == profile.user_id
            and reply.parent_asin == book.parent_asin
        )
        if method == "original":
            continue
        assert reply.text.strip(), method
        assert reply.model == "smollm2-135m" and reply.prompt_tokens > 0 and reply.completion_tokens > 0
        assert reply.latency_ms > 0
        assert reply.adapter == (f"{method}-test" if method in ("user-sft", "pref-align", "gravity") else "")
    # TriAgent is three calls: its token counts cover all of them
    assert replies["tri-agent"].completion_tokens > replies["base-rewrite"].completion_tokens
    # concurrent requests shared the running batch: decode steps carried several rows on average
    assert (engine.stats.decode_rows - rows_before) / (engine.stats.decode_steps - steps_before) > 1.5


def test_stream_sends_deltas_then_the_final_response(client: GeneratorClient, target_book) -> None:
    profile, book = target_book
    events = list(
        client.stream(
            user_id=profile.user_id,
            parent_asin=book.parent_asin,
            method="gravity",
            sampling=Sampling(max_new_tokens=12),
        )
    )
    deltas, final = events[:-1], events[-1]
    assert len(deltas) >= 2 and all(isinstance(d, str) for d in deltas)
    assert isinstance(final, generation_pb2.PersonalizeResponse) and final.adapter == "gravity-test"
    assert "".join(deltas).strip() == final.text and final.completion_tokens > 0


def test_inline_profile_and_book_with_truncation_warning(client: GeneratorClient, profiles) -> None:
    long_description = " ".join(f"The heroine crosses river number {i} at dawn." for i in range(150))
    reply = client.personalize(
        profile=profiles[1], title="Rivers", description=long_description, method="demo-based"
    )
    assert reply.text and reply.user_id == profiles[1].user_id and reply.parent_asin == ""
    assert any("truncated" in w and "description" in w for w in reply.warnings)
    assert reply.prompt_tokens + 8 <= 512


def code_and_details(client: GeneratorClient, **request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(GeneratorCallError) as err:
        client.personalize(**request)
    return err.value.code, err.value.details


def test_bad_requests_get_the_right_code_naming_the_field(client: GeneratorClient, target_book) -> None:
    profile, book = target_book
    user, asin = profile.user_id, book.parent_asin
    cases = [
        ({"user_id": "nobody", "parent_asin": asin, "method": "lamp"}, grpc.StatusCode.NOT_FOUND, "user_id"),
        (
            {"user_id": user, "parent_asin": "0000000000", "method": "lamp"},
            grpc.StatusCode.NOT_FOUND,
            "parent_asin",
        ),
        ({"user_id": user, "parent_asin": asin, "method": "telepathy"}, grpc.StatusCode.NOT_FOUND, "method"),
        (
            {"user_id": user, "parent_asin": asin, "method": "gravity", "adapter": "nope"},
            grpc.StatusCode.NOT_FOUND,
            "adapter",
        ),
        ({"user_id": user, "parent_asin": asin, "method": ""}, grpc.StatusCode.INVALID_ARGUMENT, "method"),
        ({"parent_asin": asin, "method": "lamp"}, grpc.StatusCode.INVALID_ARGUMENT, "user"),
        ({"user_id": user, "method": "lamp"}, grpc.StatusCode.INVALID_ARGUMENT, "book"),
        (
            {"user_id": user, "title": "T", "description": "  ", "method": "lamp"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "inline_book.description",
        ),
        (
            {"user_id": user, "title": "", "description": "D", "method": "lamp"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "inline_book.title",
        ),
        (
            {"user_id": user, "parent_asin": asin, "method": "lamp", "adapter": "gravity-test"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "adapter",
        ),
        (
            {"user_id": user, "parent_asin": asin, "method": "lamp", "sampling": Sampling(temperature=3.0)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "sampling.temperature",
        ),
    ]
    for request, code, field in cases:
        got_code, details = code_and_details(client, **request)
        assert (got_code, details.split(":")[0]) == (code, field), (request, details)


def test_missing_user_summary_names_the_profile_field(client: GeneratorClient, generator, profiles) -> None:
    profile = profile_pb2.UserProfile()
    profile.CopyFrom(profiles[2])
    profile.user_summary = ""
    code, details = code_and_details(
        client, profile=profile, title="T", description="A story.", method="user-summary"
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("profile.user_summary")
    # a stored profile is not the caller's mistake: the precondition fails instead
    profile.user_id = "reader-without-summary"
    generator.service.app.profiles.put(profile)
    code, details = code_and_details(
        client, user_id=profile.user_id, title="T", description="A story.", method="tri-agent"
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "profile.user_summary" in details


def test_deadline_is_honoured(generator, target_book) -> None:
    profile, book = target_book
    stub = generation_pb2_grpc.GeneratorServiceStub(make_channel(generator.target))
    request = generation_pb2.PersonalizeRequest(
        user_id=profile.user_id,
        parent_asin=book.parent_asin,
        **names.method_fields(names.TRI_AGENT),
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.Personalize(request, timeout=0.05)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # the service is still answering afterwards
    reply = stub.Personalize(
        generation_pb2.PersonalizeRequest(
            user_id=profile.user_id,
            parent_asin=book.parent_asin,
            **names.method_fields(names.ORIGINAL),
        ),
        timeout=30,
    )
    assert reply.text == book.description


def test_metrics_name_the_series_operators_scale_and_alert_on(
    client: GeneratorClient, generator, target_book
) -> None:
    import urllib.request

    profile, book = target_book
    client.personalize(user_id=profile.user_id, parent_asin=book.parent_asin, method=names.DEMO_BASED)
    port = generator.host.health_bound_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as ready:
        assert ready.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        assert key in samples, f"{name}{labels} missing from /metrics"
        return samples[key]

    assert value("gravity_rpc_requests_total", code="OK", rpc="Personalize", service="generator") >= 1
    assert value("gravity_rpc_seconds_count", rpc="Personalize", service="generator") >= 1
    assert value("gravity_personalizations_total", code="OK", method=names.DEMO_BASED) >= 1
    assert value("gravity_personalize_seconds_count", method=names.DEMO_BASED) >= 1
    assert value("gravity_tokens_generated_total", method=names.DEMO_BASED) >= 1
    assert value("gravity_queue_depth", queue="batcher-writer", service="generator") >= 0
    # the gauge counts every registry of the process (other generators of this test session included), so at
    # least what this one lists; the exact sum is tested in test_registry.py
    loaded = {m.adapter for m in client.list_methods() if m.adapter}
    assert value("gravity_adapters_loaded", service="generator") >= len(loaded) > 0


@contextlib.contextmanager
def _long_descriptions_generator(generator_settings, max_batch: int) -> Iterator[Any]:
    """A serving generator with batches of ``max_batch``, as few gRPC threads as it allows and 400-token
    descriptions (long enough to be in flight while a test makes its other calls)."""
    from gravity_core.grpc import wait_for_serving
    from gravity_generator.service import start_generator

    settings = generator_settings(
        **{
            "generator.max_batch": max_batch,
            "generator.grpc_workers": max_batch,
            "grpc.max_workers": max_batch,
            "generator.max_new_tokens": 400,
        }
    )
    running = start_generator(settings)
    try:
        wait_for_serving(make_channel(running.target), timeout_s=600)
        yield running
    finally:
        running.stop()


def test_a_full_batch_leaves_threads_for_the_cheap_calls(generator_settings, target_book) -> None:
    """A client holding max_batch long Personalize calls: ListMethods still answers at once. With as many
    gRPC threads as max_batch (the demo's 32 and 32) it queued behind them until its deadline."""
    profile, book = target_book
    with _long_descriptions_generator(generator_settings, max_batch=2) as running:
        engine = running.service.app.engine.writer.engine
        with GeneratorClient(running.target, timeout_s=600) as client, ThreadPoolExecutor(2) as pool:
            calls = [
                pool.submit(
                    client.personalize,
                    user_id=profile.user_id,
                    parent_asin=book.parent_asin,
                    method=method,
                )
                for method in ("base-rewrite", "demo-based")
            ]
            while engine.stats.decode_rows < 4 and not any(c.done() for c in calls):
                time.sleep(0.05)  # both are decoding
            methods = client.list_methods(timeout_s=5)
            assert not all(c.done() for c in calls)  # it answered while the batch was still full
            assert "gravity" in {method_name(m) for m in methods}
            for call in calls:
                assert call.result().completion_tokens > 0


def test_descriptions_beyond_the_threads_are_refused_at_once_and_the_client_retries(
    generator_settings, target_book
) -> None:
    """With every description thread taken, one more Personalize is refused with RESOURCE_EXHAUSTED and a
    retry-after-ms trailer instead of queueing in gRPC in front of ListMethods and health checks; the typed
    client waits it out and gets its description."""
    from gravity_core.clients.generator import build_request
    from gravity_core.grpc.client import pushback_s

    profile, book = target_book
    with _long_descriptions_generator(generator_settings, max_batch=1) as running:
        admission = running.service.admission
        assert admission.limit == 1  # max_batch 1: the 8 control threads are all the rest
        request = build_request(user_id=profile.user_id, parent_asin=book.parent_asin, method="base-rewrite")
        with GeneratorClient(running.target, timeout_s=600) as client, ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.personalize, request=request)
            while admission.inflight < 1 and not first.done():
                time.sleep(0.01)
            stub = generation_pb2_grpc.GeneratorServiceStub(client.channel)
            refusals = []
            for call in (
                lambda: stub.Personalize(request, timeout=60),
                lambda: list(
                    stub.PersonalizeStream(
                        generation_pb2.PersonalizeStreamRequest(request=request), timeout=60
                    )
                ),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    call()
                refusals.append(err.value)
            assert not first.done()  # refused while the first was still being written
            for refusal in refusals:
                assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "1 descriptions are in flight" in refusal.details()
                assert pushback_s(refusal) == 1.0
            assert client.list_methods(timeout_s=5)  # the cheap calls still have their threads

            second = pool.submit(client.personalize, request=request)
            streamed = list(client.stream(request=request))
            assert first.result().completion_tokens > 0
            assert second.result().text == first.result().text  # greedy: the same description
            final = streamed[-1]
            assert isinstance(final, generation_pb2.PersonalizeResponse) and final.text == first.result().text

            # a stream the client walks away from gives its place back
            for _ in client.stream(request=request):
                assert admission.inflight == 1
                break  # cancels the call
            waited = time.monotonic() + 30
            while admission.inflight and time.monotonic() < waited:
                time.sleep(0.05)
        assert admission.inflight == 0


def test_a_call_error_names_the_call_and_its_target() -> None:
    """A timed-out call says which RPC on which server: the demo once ended on a bare "DEADLINE_EXCEEDED:
    Deadline Exceeded" with five services and a dozen kinds of calls to suspect. (A service's own refusal
    keeps its message as it is: test_cli checks NOT_FOUND's.)"""
    from gravity_core.broker import free_port
    from gravity_core.clients import ServiceCallError

    target = f"127.0.0.1:{free_port()}"  # nothing listens: the call waits for it until its deadline
    with GeneratorClient(target) as client, pytest.raises(ServiceCallError) as err:
        client.list_methods(timeout_s=0.5)
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"(GeneratorService/ListMethods at {target}, deadline 0.5 s)" in str(err.value)
    # a streaming call names itself too
    with GeneratorClient(target) as client, pytest.raises(ServiceCallError) as err:
        list(client.stream(user_id="u", parent_asin="b", method="gravity", timeout_s=0.5))
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"(GeneratorService/PersonalizeStream at {target}, deadline 0.5 s)" in str(err.value)
