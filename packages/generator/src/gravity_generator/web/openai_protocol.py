"""The OpenAI chat-completions protocol of the personalization endpoint: request and response models, and
the translation to and from the generator's own request (gravity.v1.PersonalizeRequest).

A chat completion asks for one personalized description (paper §3-4): ``model`` is the method (``gravity``,
``lamp``, ... as GET /v1/models lists them, or the name of a loaded adapter, which pins that adapter),
``user`` the reader's id in the profile store, and the book comes in the extra ``gravity`` object
(``gravity.parent_asin`` for a catalog book, or ``gravity.book`` with title and description;
``gravity.profile`` may carry an inline UserProfile instead of ``user``). ``messages`` must be a valid chat
but do not enter the prompt: each method's prompt is fixed by the paper (Table 12), so methods stay
comparable and adapters see the prompts they were trained on.

:func:`personalize_request` is the whole translation: the request then takes the same path as a gRPC
Personalize (gravity_generator.serving). Errors come back naming PersonalizeRequest fields and are
renamed to this API's (:func:`api_field`) in OpenAI's shape ``{"error": {"message", "type", "param",
"code"}}``, with the HTTP status of the same failure over gRPC (gravity_core.web.errors).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gravity.v1 import generation_pb2
from gravity_core import names
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.logging import get_logger
from gravity_core.web.errors import http_error
from gravity_generator.engine import Job, MethodStatus, Personalizer, Result
from gravity_generator.registry import MethodUnavailable
from gravity_generator.settings import GeneratorSettings

log = get_logger(__name__)

# The project's name, not the method: the request's extra object (``gravity.parent_asin``, ...), the extra object
# of every response, and the models' owner.
EXTRA = "gravity"
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

# PersonalizeRequest's field names (in the errors of the shared checks) -> this API's.
FIELD_NAMES = {
    "method": "model",
    "method_variant": "model",
    "user_id": "user",
    "user": "user",
    "profile": "gravity.profile",
    "parent_asin": "gravity.parent_asin",
    "book": EXTRA,
    "inline_book.title": "gravity.book.title",
    "inline_book.description": "gravity.book.description",
    "adapter": "gravity.adapter",
    "sampling.temperature": "temperature",
    "sampling.top_p": "top_p",
    "sampling.max_new_tokens": "max_tokens",
    "seed": "seed",
}
NOT_FOUND_CODES = {
    "model": "model_not_found",
    "user": "user_not_found",
    "gravity.parent_asin": "book_not_found",
    "gravity.adapter": "adapter_not_found",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    429: "rate_limit_error",
}


def api_field(field: str) -> str:
    """``"inline_book.title"`` -> ``"gravity.book.title"``; ``"profile.user_summary"`` ->
    ``"gravity.profile.user_summary"``; this API's own names pass unchanged."""
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
    # 0 cannot reach PersonalizeRequest (where 0 means "the server's default"): refused here.
    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    temperature: float | None = None
    top_p: float | None = Field(default=None, gt=0.0)
    seed: int | None = Field(default=None, ge=-INT64_MAX - 1, le=INT64_MAX)
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
    """(method, adapter): ``model`` is a method, or the name of a loaded adapter, which pins it (as vLLM and
    LoRAX name adapters); whether the method exists is the serving path's check."""
    model = model.strip()
    if not model:
        raise InvalidInput("model", "is required: a method name (GET /v1/models lists them)")
    served = {a.name: a for a in engine.registry.current().values()}.get(model)
    if served is None:
        return model, adapter
    if adapter and adapter != served.name:
        raise InvalidInput(
            "gravity.adapter", f"model names adapter {served.name!r}, gravity.adapter {adapter!r}"
        )
    return served.method, served.name


def personalize_request(
    chat: ChatRequest, engine: Personalizer, cfg: GeneratorSettings
) -> generation_pb2.PersonalizeRequest:
    """The PersonalizeRequest a chat completion asks for. Only this protocol's own rules are checked here
    (one reader, one book, the ``gravity`` object's shape); everything else is the serving path's."""
    extra = chat.gravity or GravityOptions()
    method, adapter = resolve_model(engine, chat.model, extra.adapter.strip())
    request = generation_pb2.PersonalizeRequest(**names.method_fields(method), adapter=adapter)

    if extra.profile is not None and chat.user is not None:
        raise InvalidInput(
            "gravity.profile", "give either user (a stored reader's id) or gravity.profile (inline), not both"
        )
    if extra.profile is not None:
        try:
            json_format.ParseDict(extra.profile, request.profile)
        except json_format.ParseError as exc:
            raise InvalidInput("gravity.profile", f"is not a gravity.v1.UserProfile: {exc}") from None
    elif chat.user is not None:
        request.user_id = chat.user
    else:
        raise InvalidInput("user", "give the reader's id in user (or an inline profile in gravity.profile)")

    if extra.parent_asin is not None and extra.book is not None:
        raise InvalidInput("gravity.book", "give gravity.parent_asin or gravity.book, not both")
    if extra.parent_asin is not None:
        request.parent_asin = extra.parent_asin
    elif extra.book is not None:
        request.inline_book.CopyFrom(
            generation_pb2.InlineBook(
                title=extra.book.title, description=extra.book.description, genre=extra.book.genre
            )
        )
    else:
        raise InvalidInput(
            EXTRA,
            "give the book: gravity.parent_asin (a catalog book) or gravity.book {title, description}",
        )

    if chat.temperature is not None or chat.top_p is not None or chat.new_tokens is not None:
        # SamplingParams' temperature has no "unset" (0 is greedy): an omitted one is the server's default
        temperature = cfg.temperature if chat.temperature is None else chat.temperature
        request.sampling.CopyFrom(
            generation_pb2.SamplingParams(
                temperature=temperature, top_p=chat.top_p or 0.0, max_new_tokens=chat.new_tokens or 0
            )
        )
    if chat.seed is not None:
        request.seed = chat.seed
    return request


# ---------------------------------------------------------------------------------------------- response


def error_object(status: int, message: str, param: str | None, code: str | None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI's error object for ``exc``, its field renamed to this API's."""
    failure = http_error(exc)
    param = api_field(failure.field) if failure.field else None
    message = f"{param}: {exc.message}" if isinstance(exc, InvalidInput | NotFound) else failure.message
    if failure.status == 404:
        code = NOT_FOUND_CODES.get(param or "", "not_found")
    elif isinstance(exc, MethodUnavailable):
        code = "adapter_not_loaded"
    elif failure.status == 500:
        log.error("http_internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        code = "internal_error"
    else:
        code = failure.grpc_code.name.lower()
    return failure.status, error_object(failure.status, message, param, code)


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
        EXTRA: gravity_fields(result, job),
    }


def chunk_body(
    completion_id: str,
    created: int,
    method: str,
    delta: dict[str, Any],
    finish_reason: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": method,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        **extra,
    }


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event (``data: {...}``; ``[DONE]`` ends an OpenAI stream)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def model_entry(status: MethodStatus) -> dict[str, Any]:
    return {
        "id": status.name,
        "object": "model",
        "created": 0,
        "owned_by": EXTRA,
        EXTRA: {
            "description": status.description,
            "requires_adapter": status.requires_adapter,
            "available": status.available,
            "adapter": status.adapter or None,
        },
    }
