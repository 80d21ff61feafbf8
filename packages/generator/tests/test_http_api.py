"""The OpenAI-compatible endpoint driven by the official openai client against the real generator service on
127.0.0.1 (embedded SmolLM2, really trained adapters): personalized descriptions, streaming, the model
list, auth, errors in OpenAI's shape naming the field, 503 while loading, 429 when busy, and the HTTP
port's life with the service."""

from __future__ import annotations

import contextlib
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from google.protobuf import json_format
from pydantic import SecretStr

from gravity.v1 import profile_pb2
from gravity_core.clients import GeneratorClient, Sampling
from gravity_core.config import Settings
from gravity_core.errors import ConfigError
from gravity_core.names import method_name
from gravity_core.web.server import HttpServer
from gravity_generator.app import GeneratorApp
from gravity_generator.service import start_generator
from gravity_generator.serving import PersonalizeServing
from gravity_generator.web.app import create_web_app

TOKEN = "http-test-token"
ASK = [{"role": "user", "content": "Describe this book for me."}]


def openai_client(base_url: str, api_key: str = "no-token-configured") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=600)


@pytest.fixture(scope="module")
def http_url(generator) -> str:
    assert generator.service.http is not None, "the generator serves HTTP by default"
    return generator.service.http.url


@pytest.fixture(scope="module")
def client(http_url: str) -> openai.OpenAI:
    return openai_client(http_url)


@contextlib.contextmanager
def serve(serving: PersonalizeServing, settings: Settings, **kwargs: Any) -> Iterator[str]:
    """Another HTTP front (other auth or limits) on an already loaded generator: no second model."""
    web = create_web_app(serving, settings, **kwargs)
    server = HttpServer(web.asgi, "generator-test", "127.0.0.1", 0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        web.close()


@pytest.fixture
def token_url(generator) -> Iterator[str]:
    settings = generator.service.settings
    grpc_settings = settings.grpc.model_copy(update={"auth_token": SecretStr(TOKEN)})
    with serve(generator.service.serving, settings.model_copy(update={"grpc": grpc_settings})) as url:
        yield url


@pytest.mark.model
def test_openai_client_gets_a_personalized_description(client: openai.OpenAI, generator, target_book) -> None:
    profile, book = target_book
    reply = client.chat.completions.create(
        model="gravity",
        messages=ASK,
        user=profile.user_id,
        max_tokens=8,
        extra_body={"gravity": {"parent_asin": book.parent_asin}},
    )
    text = reply.choices[0].message.content
    assert text and reply.model == "gravity" and reply.object == "chat.completion"
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert 0 < reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    extra = reply.model_extra["gravity"]
    assert extra["adapter"] == "gravity-test" == reply.system_fingerprint
    assert (extra["user_id"], extra["parent_asin"], extra["writer_model"]) == (
        profile.user_id,
        book.parent_asin,
        "smollm2-135m",
    )
    # the same engine, prompt and adapter as gRPC: greedy decoding gives the same text
    with GeneratorClient(generator.target, timeout_s=600) as grpc_client:
        over_grpc = grpc_client.personalize(
            user_id=profile.user_id,
            parent_asin=book.parent_asin,
            method="gravity",
            sampling=Sampling(max_new_tokens=8),
        )
    assert over_grpc.text == text and over_grpc.completion_tokens == reply.usage.completion_tokens


@pytest.mark.model
def test_inline_profile_and_book_and_an_adapter_named_as_model(client: openai.OpenAI, profiles) -> None:
    reply = client.chat.completions.create(
        model="demo-based",
        messages=ASK,
        max_completion_tokens=6,
        temperature=0.7,
        seed=3,
        extra_body={
            "gravity": {
                "profile": json_format.MessageToDict(profiles[1]),
                "book": {"title": "Rivers", "description": "A heroine crosses rivers at dawn."},
            }
        },
    )
    assert reply.choices[0].message.content and reply.usage.completion_tokens <= 6
    extra = reply.model_extra["gravity"]
    assert extra["user_id"] == profiles[1].user_id and extra["parent_asin"] is None
    assert extra["adapter"] is None
    # a loaded adapter's name works as the model: its method, pinned to that adapter
    pinned = client.chat.completions.create(
        model="pref-align-test",
        messages=ASK,
        user=profiles[1].user_id,
        max_tokens=4,
        extra_body={"gravity": {"book": {"title": "Rivers", "description": "A heroine crosses rivers."}}},
    )
    assert pinned.model == "pref-align" and pinned.model_extra["gravity"]["adapter"] == "pref-align-test"


@pytest.mark.model
def test_stream_sends_deltas_then_the_finish_and_usage(client: openai.OpenAI, target_book) -> None:
    profile, book = target_book
    request: dict[str, Any] = {
        "model": "lamp",
        "messages": ASK,
        "user": profile.user_id,
        "max_tokens": 10,
        "extra_body": {"gravity": {"parent_asin": book.parent_asin}},
    }
    chunks = list(
        client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content]
    assert len(deltas) >= 2
    finish = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finish.choices[0].finish_reason in ("stop", "length")
    assert finish.model_extra["gravity"]["method"] == "lamp" and finish.model == "lamp"
    usage = chunks[-1]
    assert usage.choices == [] and 0 < usage.usage.completion_tokens <= 10
    assert len({c.id for c in chunks}) == 1
    # the stream says what a plain request says
    whole = client.chat.completions.create(**request)
    assert "".join(deltas).strip() == whole.choices[0].message.content
    # without include_usage no usage chunk is sent
    plain = list(client.chat.completions.create(**request, stream=True))
    assert all(c.choices for c in plain)


@pytest.mark.model
def test_models_list_every_available_method(client: openai.OpenAI, generator) -> None:
    with GeneratorClient(generator.target, timeout_s=60) as grpc_client:
        available = [method_name(m) for m in grpc_client.list_methods() if m.available]
    models = client.models.list().data
    assert [m.id for m in models] == available
    assert all(m.object == "model" and m.model_extra["gravity"]["available"] for m in models)
    gravity = client.models.retrieve("gravity")
    assert gravity.model_extra["gravity"] == {
        "description": gravity.model_extra["gravity"]["description"],
        "requires_adapter": True,
        "available": True,
        "adapter": "gravity-test",
    }
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("telepathy")
    assert err.value.code == "model_not_found"


def failure(client: openai.OpenAI, **request: Any) -> openai.APIStatusError:
    request.setdefault("messages", ASK)
    request.setdefault("max_tokens", 4)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(**request)
    return err.value


@pytest.mark.model
def test_errors_have_openai_shape_and_name_the_field(
    client: openai.OpenAI, http_url: str, generator, target_book
) -> None:
    profile, book = target_book
    user, on_book = profile.user_id, {"gravity": {"parent_asin": book.parent_asin}}
    cases = [
        ({"model": "telepathy", "user": user, "extra_body": on_book}, 404, "model", "model_not_found"),
        ({"model": "lamp", "user": "nobody", "extra_body": on_book}, 404, "user", "user_not_found"),
        (
            {"model": "lamp", "user": user, "extra_body": {"gravity": {"parent_asin": "0000000000"}}},
            404,
            "gravity.parent_asin",
            "book_not_found",
        ),
        ({"model": "lamp", "user": user}, 400, "gravity", "invalid_argument"),
        ({"model": "lamp", "extra_body": on_book}, 400, "user", "invalid_argument"),
        (
            {"model": "lamp", "user": user, "temperature": 3.0, "extra_body": on_book},
            400,
            "temperature",
            None,
        ),
        (
            {"model": "lamp", "user": user, "max_tokens": 10**6, "extra_body": on_book},
            400,
            "max_tokens",
            None,
        ),
        ({"model": "lamp", "user": user, "n": 2, "extra_body": on_book}, 400, "n", None),
        (
            {"model": "lamp", "user": user, "extra_body": {**on_book, "frobnicate": 1}},
            400,
            "frobnicate",
            None,
        ),
        (
            {
                "model": "lamp",
                "user": user,
                "extra_body": {"gravity": {**on_book["gravity"], "adapter": "gravity-test"}},
            },
            400,
            "gravity.adapter",
            None,
        ),
        (
            {"model": "lamp", "extra_body": {"gravity": {**on_book["gravity"], "profile": {"age": 3}}}},
            400,
            "gravity.profile",
            None,
        ),
        (
            {
                "model": "gravity",
                "user": user,
                "extra_body": {"gravity": {"book": {"title": "T", "description": " "}}},
            },
            400,
            "gravity.book.description",
            None,
        ),
    ]
    for request, status, param, code in cases:
        err = failure(client, **request)
        assert (err.status_code, err.param) == (status, param), (request, err.body)
        assert err.type == "invalid_request_error" and err.body["message"].startswith(f"{param}: ")
        if code is not None:
            assert err.code == code, (request, err.body)
    bad_json = httpx.post(f"{http_url}/v1/chat/completions", content=b"{not json", timeout=30)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["param"] == "body"
    # a stored reader without the summary tri-agent needs: the server's state, not the request, is at fault
    incomplete = profile_pb2.UserProfile()
    incomplete.CopyFrom(profile)
    incomplete.user_id, incomplete.user_summary = "http-reader-without-summary", ""
    generator.service.app.profiles.put(incomplete)
    err = failure(client, model="tri-agent", user=incomplete.user_id, extra_body=on_book)
    assert (err.status_code, err.code) == (409, "failed_precondition") and "user_summary" in err.message


def series_value(ops_port: int, series: str) -> float:
    """One series' value as the ops port's /metrics reports it (0 when it has not been recorded yet)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.model
def test_http_requests_are_counted_by_the_shared_serving_path(
    client: openai.OpenAI, generator, target_book
) -> None:
    profile, book = target_book
    port = generator.host.health_bound_port
    personalized = 'gravity_personalizations_total{code="OK",method="user-summary"}'
    tokens = 'gravity_tokens_generated_total{method="user-summary"}'
    over_grpc = 'gravity_rpc_requests_total{code="OK",rpc="Personalize",service="generator"}'
    before = {s: series_value(port, s) for s in (personalized, tokens, over_grpc)}
    request: dict[str, Any] = {
        "model": "user-summary",
        "messages": ASK,
        "user": profile.user_id,
        "max_tokens": 4,
        "extra_body": {"gravity": {"parent_asin": book.parent_asin}},
    }
    reply = client.chat.completions.create(**request)
    streamed = list(
        client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
    )
    generated = reply.usage.completion_tokens + streamed[-1].usage.completion_tokens
    assert series_value(port, personalized) == before[personalized] + 2
    assert series_value(port, tokens) == before[tokens] + generated > before[tokens]
    assert series_value(port, over_grpc) == before[over_grpc]  # HTTP is not counted as a gRPC call


@pytest.mark.model
def test_auth_is_the_grpc_token(token_url: str, target_book) -> None:
    profile, book = target_book
    request = {
        "model": "original",
        "messages": ASK,
        "user": profile.user_id,
        "extra_body": {"gravity": {"parent_asin": book.parent_asin}},
    }
    with pytest.raises(openai.AuthenticationError) as err:
        openai_client(token_url, "wrong").chat.completions.create(**request)
    assert err.value.code == "invalid_api_key"
    anonymous = httpx.get(f"{token_url}/v1/models", timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{token_url}/compare", timeout=30).status_code == 401
    # probes need no secret
    assert httpx.get(f"{token_url}/healthz", timeout=30).json() == {"status": "serving"}
    reply = openai_client(token_url, TOKEN).chat.completions.create(**request)
    assert reply.choices[0].message.content == book.description and reply.usage.completion_tokens == 0


@pytest.mark.model
def test_busy_generator_answers_429_until_a_slot_frees(generator, target_book) -> None:
    profile, book = target_book
    service = generator.service
    limited = service.app.cfg.model_copy(update={"http_max_inflight": 1})
    with serve(service.serving, service.settings, cfg=limited) as url:
        client = openai_client(url)
        request: dict[str, Any] = {
            "model": "base-rewrite",
            "messages": ASK,
            "user": profile.user_id,
            "max_tokens": 6,
            "extra_body": {"gravity": {"parent_asin": book.parent_asin}},
        }
        held = client.chat.completions.create(**request, stream=True)  # headers received, body not read
        with pytest.raises(openai.RateLimitError) as err:
            client.chat.completions.create(**request)
        assert err.value.response.headers["retry-after"] == "1"
        assert any(c.choices and c.choices[0].finish_reason for c in list(held))
        assert client.chat.completions.create(**request).choices[0].message.content


def test_http_answers_503_while_loading(generator_settings) -> None:
    settings = generator_settings()
    app = GeneratorApp(settings, micro_batch=True)  # never loaded
    with serve(PersonalizeServing(app), settings) as url:
        health = httpx.get(f"{url}/healthz", timeout=30)
        assert health.status_code == 503 and "loading" in health.json()["reason"]
        with pytest.raises(openai.InternalServerError) as err:
            openai_client(url).chat.completions.create(model="gravity", messages=ASK, user="U")
        assert err.value.status_code == 503 and "loading" in err.value.message
        assert httpx.get(f"{url}/v1/models", timeout=30).status_code == 503
        page = httpx.get(f"{url}/compare", timeout=30)
        assert page.status_code == 503 and "still loading" in page.text


def test_a_taken_http_port_fails_the_start_and_frees_the_grpc_port(generator_settings) -> None:
    with socket.socket() as taken, socket.socket() as probe:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        probe.bind(("127.0.0.1", 0))
        grpc_port = probe.getsockname()[1]
        probe.close()
        with pytest.raises(ConfigError, match=f"127.0.0.1:{taken.getsockname()[1]}"):
            start_generator(
                generator_settings(**{"generator.meta_path": "/nonexistent/meta_Books.jsonl"}),
                port=grpc_port,
                http_port=taken.getsockname()[1],
            )
    with socket.socket() as again:
        again.bind(("127.0.0.1", grpc_port))  # the gRPC server that had started was stopped


def test_http_lives_and_stops_with_the_service(generator_settings) -> None:
    broken = {"generator.meta_path": "/nonexistent/meta_Books.jsonl"}  # loading fails at once: no model
    running = start_generator(generator_settings(**broken))
    url = running.service.http.url
    try:
        for _ in range(100):
            health = httpx.get(f"{url}/healthz", timeout=30)
            if "failed" in health.json()["reason"]:
                break
        assert health.status_code == 503 and "meta_path" in health.json()["reason"]
    finally:
        running.stop(0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=5)
    off = start_generator(generator_settings(**broken, **{"generator.http_enabled": False}))
    try:
        assert off.service.http is None
    finally:
        off.stop(0.5)
