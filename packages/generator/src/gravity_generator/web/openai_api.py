"""The OpenAI-compatible personalization endpoint's routes: ``POST /v1/chat/completions``, ``GET /v1/models``
and ``GET /v1/models/{model}``.

A route checks the bearer token (gRPC's ``grpc.auth_token``), parses the body into the protocol's models
(gravity_generator.web.openai_protocol), translates it into a PersonalizeRequest and hands it to the serving
path gRPC uses (gravity_generator.serving) on a worker thread, so the event loop never waits on the model.
Any OpenAI-compatible client (the openai package, LangChain's ChatOpenAI, curl) can ask for a personalized
description; ``stream: true`` answers with server-sent events in OpenAI's chunk format, ended by ``[DONE]``.

More than ``generator.http_max_inflight`` requests generating at once are answered 429 with Retry-After,
before they cost anything; a client that hangs up has its request dropped before it costs model time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gravity.v1 import generation_pb2
from gravity_core.errors import RateLimited
from gravity_core.web.security import bearer_token, same_secret
from gravity_generator.admission import Admission
from gravity_generator.engine import Result
from gravity_generator.serving import PersonalizeServing
from gravity_generator.web.openai_protocol import (
    EXTRA,
    ChatRequest,
    chunk_body,
    completion_body,
    error_body,
    error_object,
    fingerprint,
    gravity_fields,
    model_entry,
    parse_request,
    personalize_request,
    sse,
    usage,
)

_END = object()


def _next(events: Iterator[Any]) -> Any:
    return next(events, _END)


def error_for(exc: BaseException) -> JSONResponse:
    status, body = error_body(exc)
    wait = exc.retry_after_s if isinstance(exc, RateLimited) else 1.0
    headers = {"retry-after": str(math.ceil(wait))} if status in (429, 503) else None
    return JSONResponse(body, status_code=status, headers=headers)


class _ClosingStream(StreamingResponse):
    """A stream that runs ``on_close`` however it ends (finished, failed, client gone)."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


@contextlib.asynccontextmanager
async def caller_alive(request: Request) -> AsyncIterator[Callable[[], bool]]:
    """``alive()`` turns False once the client hangs up: its request is dropped before it costs model time."""
    gone = asyncio.Event()

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()

    task = asyncio.create_task(watch())
    try:
        yield lambda: not gone.is_set()
    finally:
        task.cancel()


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class OpenAIApi:
    def __init__(self, serving: PersonalizeServing, token: str | None, max_inflight: int) -> None:
        self.serving = serving
        self.token = token
        self.admission = Admission(max_inflight, "requests are generating (generator.http_max_inflight)")
        self._threads = anyio.CapacityLimiter(max_inflight)

    def denied(self, request: Request) -> Response | None:
        if not self.token or same_secret(bearer_token(request), self.token):
            return None
        return JSONResponse(
            error_object(
                401,
                "missing or invalid bearer token (Authorization: Bearer <grpc.auth_token>)",
                None,
                "invalid_api_key",
            ),
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )

    async def list_models(self, request: Request) -> Response:
        if (denied := self.denied(request)) is not None:
            return denied
        try:
            methods = self.serving.methods()
        except Exception as exc:
            return error_for(exc)
        return JSONResponse({"object": "list", "data": [model_entry(s) for s in methods if s.available]})

    async def get_model(self, request: Request) -> Response:
        if (denied := self.denied(request)) is not None:
            return denied
        name = request.path_params["model"]
        try:
            methods = {s.name: s for s in self.serving.methods()}
        except Exception as exc:
            return error_for(exc)
        if name not in methods:
            message = f"model: unknown method {name!r} (known: {', '.join(methods)})"
            return JSONResponse(error_object(404, message, "model", "model_not_found"), status_code=404)
        return JSONResponse(model_entry(methods[name]))

    async def chat_completions(self, request: Request) -> Response:
        if (denied := self.denied(request)) is not None:
            return denied
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            message = f"body: not valid JSON ({exc})"
            return JSONResponse(error_object(400, message, "body", "invalid_json"), status_code=400)
        try:
            self.admission.admit()
        except RateLimited as exc:
            return error_for(exc)
        handed_over = False
        try:
            chat = parse_request(body)
            if chat.stream:
                response = await self._stream(chat)
                handed_over = isinstance(response, _ClosingStream)
                return response
            async with caller_alive(request) as alive:
                job = self.serving.job(self._translate(chat), alive=alive)
                result = await anyio.to_thread.run_sync(self.serving.personalize, job, limiter=self._threads)
            return JSONResponse(completion_body(result, job, _completion_id(), int(time.time())))
        except Exception as exc:
            return error_for(exc)
        finally:
            if not handed_over:
                self.admission.release()

    def _translate(self, chat: ChatRequest) -> generation_pb2.PersonalizeRequest:
        return personalize_request(chat, self.serving.engine, self.serving.app.cfg)

    async def _stream(self, chat: ChatRequest) -> Response:
        job = self.serving.job(self._translate(chat))
        events = self.serving.stream(job)
        try:
            # Everything that can fail before the first token (the adapter, LaMP's retrieval, TriAgent's
            # first stages) fails here, with its own HTTP status instead of an error inside a 200 stream.
            first = await anyio.to_thread.run_sync(_next, events, limiter=self._threads)
        except Exception as exc:
            events.close()
            return error_for(exc)
        completion_id, created = _completion_id(), int(time.time())
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            return sse(chunk_body(completion_id, created, job.method, delta, finish, **extra))

        released = False

        def close() -> None:
            nonlocal released
            if not released:
                released = True
                events.close()
                self.admission.release()

        async def body() -> AsyncIterator[bytes]:
            try:
                yield chunk({"role": "assistant", "content": ""})
                item = first
                while item is not _END:
                    if isinstance(item, Result):
                        extra = {
                            "system_fingerprint": fingerprint(item),
                            EXTRA: gravity_fields(item, job),
                        }
                        yield chunk({}, item.finish_reason, **extra)
                        if include_usage:
                            yield sse(
                                {
                                    **chunk_body(completion_id, created, job.method, {}),
                                    "choices": [],
                                    "usage": usage(item),
                                }
                            )
                    elif item:
                        yield chunk({"content": item})
                    item = await anyio.to_thread.run_sync(_next, events, limiter=self._threads)
                yield sse("[DONE]")
            except Exception as exc:
                # Headers are gone: OpenAI clients raise on an error event inside the stream.
                yield sse(error_body(exc)[1])
            finally:
                # before the response's last frame: a client that read the whole stream finds the slot free
                close()

        return _ClosingStream(body(), close)
