"""The OpenAI-compatible personalization endpoint: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI-compatible client (the openai package, LangChain's ChatOpenAI, curl) asks for a personalized
description (paper §3-4): ``model`` is the method (``gravity``, ``lamp``, ... or the name of a loaded
adapter), ``user`` the reader's id in the profile store, and the book comes in the extra ``gravity`` object
(``gravity.parent_asin`` for a catalog book, or ``gravity.book`` with title and description;
``gravity.profile`` may carry an inline UserProfile instead of ``user``). ``messages`` must be a valid chat
but do not enter the prompt: each method's prompt is fixed by the paper (Table 12) so methods stay
comparable and adapters see the prompts they were trained on.

The request is validated by the same checks as gRPC's Personalize (gravity_generator.requests), whose
field names are renamed to this API's in the errors, and runs on the same engine and micro-batcher. Errors
have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` with the HTTP status of the same
failure over gRPC (gravity_core.web.errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gravity.v1 import profile_pb2
from gravity_core.errors import InvalidInput, NotFound, RateLimited
from gravity_core.logging import get_logger
from gravity_core.web.errors import http_error
from gravity_core.web.security import bearer_token, same_secret
from gravity_generator.app import GeneratorApp
from gravity_generator.engine import Job, Personalizer, Result
from gravity_generator.requests import catalog_book, generation_params, inline_book, reader_profile

log = get_logger(__name__)

# The gRPC request's field names (raised by the shared checks) -> this API's.
FIELD_NAMES = {
    "method": "model",
    "user_id": "user",
    "user": "user",
    "parent_asin": "gravity.parent_asin",
    "book": "gravity",
    "inline_book.title": "gravity.book.title",
    "inline_book.description": "gravity.book.description",
    "adapter": "gravity.adapter",
    "sampling.temperature": "temperature",
    "sampling.top_p": "top_p",
    "sampling.max_new_tokens": "max_tokens",
}
NOT_FOUND_CODES = {
    "model": "model_not_found",
    "user": "user_not_found",
    "gravity.parent_asin": "book_not_found",
    "gravity.adapter": "adapter_not_found",
}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error"}


def api_field(field: str) -> str:
    if field in FIELD_NAMES:
        return FIELD_NAMES[field]
    if field.startswith("profile."):
        return f"gravity.{field}"
    return field


# ---------------------------------------------------------------------------------------------- request


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ... are valid chat; none is used

    role: str
    content: str | list[Any] | None = None


class InlineBook(_Strict):
    title: str
    description: str
    genre: str = ""


class GravityOptions(_Strict):
    """The extra ``gravity`` object (openai client: ``extra_body={"gravity": {...}}``)."""

    parent_asin: str | None = None
    book: InlineBook | None = None
    # A gravity.v1.UserProfile in protobuf's JSON mapping (a line of profiles.jsonl), instead of ``user``.
    profile: dict[str, Any] | None = None
    # Serve with this loaded adapter (by name) instead of the method's current one.
    adapter: str = ""


class StreamOptions(_Strict):
    include_usage: bool = False


class ChatRequest(_Strict):
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    user: str | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    # Accepted at their neutral values only (clients send them by default); anything else is refused.
    n: int | None = None
    stop: str | list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    gravity: GravityOptions | None = None

    def check_supported(self) -> None:
        if self.n not in (None, 1):
            raise InvalidInput("n", f"one description per request, got {self.n}")
        if self.stop:
            raise InvalidInput(
                "stop", "is not supported: the method's prompt decides where a description ends"
            )
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(self, name):
                raise InvalidInput(name, "is not supported (only 0)")
        if self.logprobs:
            raise InvalidInput("logprobs", "is not supported")
        if self.stream_options is not None and not self.stream:
            raise InvalidInput("stream_options", "is only allowed with stream: true")
        if (
            self.max_tokens is not None
            and self.max_completion_tokens is not None
            and self.max_tokens != self.max_completion_tokens
        ):
            raise InvalidInput("max_completion_tokens", "differs from max_tokens: give one of them")

    @property
    def new_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


def parse_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    try:
        chat = ChatRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        if first["type"] == "extra_forbidden":
            raise InvalidInput(field, "is not a parameter of this endpoint") from None
        raise InvalidInput(field, first["msg"]) from None
    chat.check_supported()
    return chat


def resolve_model(engine: Personalizer, model: str, adapter: str) -> tuple[str, str]:
    """(method, adapter): ``model`` is a method, or the name of a loaded adapter (which pins it)."""
    model = model.strip()
    if not model:
        raise InvalidInput("model", "is required: a method name (GET /v1/models lists them)")
    by_name = {a.name: a for a in engine.registry.current().values()}
    served = by_name.get(model)
    if served is None:
        engine.check_method(model)
        return model, adapter
    if adapter and adapter != served.name:
        raise InvalidInput(
            "gravity.adapter", f"model names adapter {served.name!r}, gravity.adapter {adapter!r}"
        )
    return served.method, served.name


def job_for(chat: ChatRequest, app: GeneratorApp, alive: Callable[[], bool] | None = None) -> Job:
    """The engine job a chat request asks for; errors carry gRPC field names (see :func:`api_field`)."""
    engine = app.require_engine()
    extra = chat.gravity or GravityOptions()
    method, adapter = resolve_model(engine, chat.model, extra.adapter.strip())

    if extra.profile is not None and chat.user is not None:
        raise InvalidInput(
            "gravity.profile", "give either user (a stored reader's id) or gravity.profile (inline), not both"
        )
    if extra.profile is not None:
        profile = profile_pb2.UserProfile()
        try:
            json_format.ParseDict(extra.profile, profile)
        except json_format.ParseError as exc:
            raise InvalidInput("gravity.profile", f"is not a gravity.v1.UserProfile: {exc}") from None
    elif chat.user is not None:
        profile = reader_profile(app, chat.user)
    else:
        raise InvalidInput("user", "give the reader's id in user (or an inline profile in gravity.profile)")

    if extra.parent_asin is not None and extra.book is not None:
        raise InvalidInput("gravity.book", "give gravity.parent_asin or gravity.book, not both")
    if extra.parent_asin is not None:
        book = catalog_book(app, extra.parent_asin)
    elif extra.book is not None:
        book = inline_book(extra.book.title, extra.book.description, extra.book.genre)
    else:
        raise InvalidInput(
            "gravity",
            "give the book: gravity.parent_asin (a catalog book) or gravity.book {title, description}",
        )
    return Job(
        profile=profile,
        book=book,
        method=method,
        params=generation_params(app.cfg, chat.temperature, chat.top_p, chat.new_tokens, chat.seed),
        adapter=adapter,
        inline_profile=extra.profile is not None,
        alive=alive,
    )


# ---------------------------------------------------------------------------------------------- response


def _error(status: int, message: str, param: str | None, code: str | None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status) or ("rate_limit_error" if status == 429 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(_error(status, message, param, code), status_code=status, headers=headers)


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """OpenAI's error object for ``exc``, its field renamed to this API's."""
    failure = http_error(exc)
    param = api_field(failure.field) if failure.field else None
    message = f"{param}: {exc.message}" if isinstance(exc, InvalidInput | NotFound) else failure.message
    if failure.status == 404:
        code = NOT_FOUND_CODES.get(param or "", "not_found")
    elif failure.status == 500:
        log.error("http_internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        code = "internal_error"
    else:
        code = failure.grpc_code.name.lower()
    return failure.status, _error(failure.status, message, param, code)


def error_for(exc: BaseException) -> JSONResponse:
    status, body = error_body(exc)
    headers = {"retry-after": "1"} if status in (429, 503) else None
    return JSONResponse(body, status_code=status, headers=headers)


def gravity_fields(result: Result, job: Job) -> dict[str, Any]:
    """What an OpenAI response has no field for: the adapter used, the reader, the book, warnings."""
    return {
        "method": result.method,
        "adapter": result.adapter or None,
        "writer_model": result.model or None,
        "user_id": job.profile.user_id,
        "parent_asin": job.book.parent_asin or None,
        "latency_ms": round(result.latency_ms, 1),
        "warnings": list(result.warnings),
    }


def usage(result: Result) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def fingerprint(result: Result) -> str | None:
    # Clients surface system_fingerprint (LangChain: response_metadata): name what produced the text.
    return result.adapter or result.model or None


def completion_body(result: Result, job: Job, completion_id: str, created: int) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.method,
        "system_fingerprint": fingerprint(result),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text, "refusal": None},
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage(result),
        "gravity": gravity_fields(result, job),
    }


def sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


_END = object()


def _next(events: Iterator[Any]) -> Any:
    return next(events, _END)


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


# ---------------------------------------------------------------------------------------------- endpoints


class OpenAIApi:
    def __init__(self, app: GeneratorApp, token: str | None, max_inflight: int) -> None:
        self.app = app
        self.token = token
        self.max_inflight = max_inflight
        self.inflight = 0  # touched only on the event loop's thread
        self._threads = anyio.CapacityLimiter(max_inflight)

    def denied(self, request: Request) -> Response | None:
        if not self.token or same_secret(bearer_token(request), self.token):
            return None
        return error_response(
            401,
            "missing or invalid bearer token (Authorization: Bearer <grpc.auth_token>)",
            code="invalid_api_key",
            headers={"www-authenticate": "Bearer"},
        )

    async def list_models(self, request: Request) -> Response:
        if (denied := self.denied(request)) is not None:
            return denied
        try:
            methods = self.app.require_engine().methods()
        except Exception as exc:
            return error_for(exc)
        return JSONResponse({"object": "list", "data": [model_entry(s) for s in methods if s.available]})

    async def get_model(self, request: Request) -> Response:
        if (denied := self.denied(request)) is not None:
            return denied
        name = request.path_params["model"]
        try:
            methods = {s.name: s for s in self.app.require_engine().methods()}
        except Exception as exc:
            return error_for(exc)
        if name not in methods:
            return error_response(
                404,
                f"model: unknown method {name!r} (known: {', '.join(methods)})",
                "model",
                "model_not_found",
            )
        return JSONResponse(model_entry(methods[name]))

    async def chat_completions(self, request: Request) -> Response:
        if (denied := self.denied(request)) is not None:
            return denied
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return error_response(400, f"body: not valid JSON ({exc})", "body", "invalid_json")
        if self.inflight >= self.max_inflight:
            return error_for(
                RateLimited(
                    f"busy: {self.inflight} requests are generating (generator.http_max_inflight); retry shortly"
                )
            )
        self.inflight += 1
        handed_over = False
        try:
            chat = parse_request(body)
            if chat.stream:
                response = await self._stream(chat)
                handed_over = isinstance(response, _ClosingStream)
                return response
            async with caller_alive(request) as alive:
                job = job_for(chat, self.app, alive)
                result = await anyio.to_thread.run_sync(
                    self.app.require_engine().run_one, job, limiter=self._threads
                )
            return JSONResponse(completion_body(result, job, _completion_id(), int(time.time())))
        except Exception as exc:
            return error_for(exc)
        finally:
            if not handed_over:
                self.inflight -= 1

    async def _stream(self, chat: ChatRequest) -> Response:
        job = job_for(chat, self.app)
        events = self.app.require_engine().stream(job)
        try:
            # Everything that can fail before the first token (the adapter, LaMP's retrieval, TriAgent's
            # first stages) fails here, with its own HTTP status instead of an error inside a 200 stream.
            first = await anyio.to_thread.run_sync(_next, events, limiter=self._threads)
        except Exception as exc:
            events.close()
            return error_for(exc)
        completion_id, created = _completion_id(), int(time.time())
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": job.method,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                **extra,
            }

        released = False

        def close() -> None:
            nonlocal released
            if not released:
                released = True
                events.close()
                self.inflight -= 1

        async def body() -> AsyncIterator[bytes]:
            try:
                yield sse(chunk({"role": "assistant", "content": ""}))
                item = first
                while item is not _END:
                    if isinstance(item, Result):
                        result = item
                        yield sse(
                            chunk(
                                {},
                                result.finish_reason,
                                system_fingerprint=fingerprint(result),
                                gravity=gravity_fields(result, job),
                            )
                        )
                        if include_usage:
                            yield sse({**chunk({}), "choices": [], "usage": usage(result)})
                    elif item:
                        yield sse(chunk({"content": item}))
                    item = await anyio.to_thread.run_sync(_next, events, limiter=self._threads)
                yield sse("[DONE]")
            except Exception as exc:
                # Headers are gone: OpenAI clients raise on an error event inside the stream.
                yield sse(error_body(exc)[1])
            finally:
                # before the response's last frame: a client that read the whole stream finds the slot free
                close()

        return _ClosingStream(body(), close)


def model_entry(status: Any) -> dict[str, Any]:
    return {
        "id": status.name,
        "object": "model",
        "created": 0,
        "owned_by": "gravity",
        "gravity": {
            "description": status.description,
            "requires_adapter": status.requires_adapter,
            "available": status.available,
            "adapter": status.adapter or None,
        },
    }


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
