"""Turning a PersonalizeRequest into a validated :class:`~gravity_generator.engine.Job` and back.

Every problem is reported against the request field it comes from: INVALID_ARGUMENT for malformed input,
NOT_FOUND for a user, book, method or adapter that does not exist. The checks take plain values
(:func:`generation_params`, :func:`reader_profile`, :func:`catalog_book`, :func:`inline_book`), so the HTTP
API (gravity_generator.web) validates exactly as gRPC does and only renames the fields in its errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gravity.v1 import generation_pb2, profile_pb2
from gravity_core import names
from gravity_core.errors import InvalidInput, NotFound
from gravity_core.llm import GenerationParams
from gravity_generator.app import GeneratorApp
from gravity_generator.engine import Job, Result
from gravity_generator.methods import BookInput
from gravity_generator.settings import GeneratorSettings


def generation_params(
    cfg: GeneratorSettings,
    temperature: float | None = None,
    top_p: float | None = None,
    max_new_tokens: int | None = None,
    seed: int | None = None,
) -> GenerationParams:
    """Sampling from plain values (None takes the server default; temperature 0 means greedy).

    Errors name the gRPC request's fields (``sampling.*``); the HTTP API renames them to its own.
    """
    if temperature is not None and not 0.0 <= temperature <= 2.0:
        raise InvalidInput("sampling.temperature", f"must be within [0, 2], got {temperature}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise InvalidInput("sampling.top_p", f"must be within (0, 1], got {top_p}")
    if max_new_tokens is not None and not 1 <= max_new_tokens <= cfg.max_new_tokens_limit:
        raise InvalidInput(
            "sampling.max_new_tokens",
            f"must be within [1, {cfg.max_new_tokens_limit}] (generator.max_new_tokens_limit), got {max_new_tokens}",
        )
    temperature = cfg.temperature if temperature is None else temperature
    seed = cfg.seed if seed is None else seed
    if temperature <= 0.0:
        seed = None  # greedy decoding ignores it; leaving it out lets such requests share a batch
    return GenerationParams(
        temperature=temperature,
        top_p=cfg.top_p if top_p is None else top_p,
        max_tokens=cfg.max_new_tokens if max_new_tokens is None else max_new_tokens,
        seed=seed,
    )


def sampling_params(request: generation_pb2.PersonalizeRequest, cfg: GeneratorSettings) -> GenerationParams:
    """The request's sampling (unset fields take the server defaults; temperature 0 means greedy)."""
    seed = request.seed if request.HasField("seed") else None
    if not request.HasField("sampling"):
        return generation_params(cfg, seed=seed)
    s = request.sampling
    # proto3 scalars cannot be unset: 0 means "server default" for top_p and max_new_tokens
    return generation_params(
        cfg, s.temperature, s.top_p if s.top_p != 0 else None, s.max_new_tokens or None, seed
    )


def reader_profile(app: GeneratorApp, user_id: str) -> profile_pb2.UserProfile:
    """A stored reader's profile (NOT_FOUND naming ``user_id`` when the store has none)."""
    if not user_id.strip():
        raise InvalidInput("user_id", "is empty")
    return app.profiles.get(user_id)


def inline_book(title: str, description: str, genre: str = "") -> BookInput:
    if not title.strip():
        raise InvalidInput("inline_book.title", "is required")
    if not description.strip():
        raise InvalidInput("inline_book.description", "is required: there is nothing to personalize")
    return BookInput("", title.strip(), description, genre)


def job_from_request(
    request: generation_pb2.PersonalizeRequest,
    app: GeneratorApp,
    deadline: float | None = None,
    alive: Callable[[], bool] | None = None,
) -> Job:
    engine = app.require_engine()
    method = names.method_name(request)
    engine.check_method(method)

    which_user = request.WhichOneof("user")
    if which_user is None:
        raise InvalidInput("user", "give user_id or an inline profile")
    profile = reader_profile(app, request.user_id) if which_user == "user_id" else request.profile

    which_book = request.WhichOneof("book")
    if which_book is None:
        raise InvalidInput("book", "give parent_asin or inline_book (title and description)")
    if which_book == "parent_asin":
        book = catalog_book(app, request.parent_asin)
    else:
        inline = request.inline_book
        book = inline_book(inline.title, inline.description, inline.genre)

    return Job(
        profile=profile,
        book=book,
        method=method,
        params=sampling_params(request, app.cfg),
        adapter=request.adapter.strip(),
        inline_profile=which_user == "profile",
        deadline=deadline,
        alive=alive,
    )


def catalog_book(app: GeneratorApp, parent_asin: str) -> BookInput:
    """A catalog book with a description to personalize (errors name ``parent_asin``)."""
    if not parent_asin.strip():
        raise InvalidInput("parent_asin", "is empty")
    record = app.catalog.get(parent_asin.strip()) if app.catalog is not None else None
    if record is None:
        raise NotFound("parent_asin", f"book {parent_asin!r} is not in the catalog")
    if not record.description.strip():
        raise InvalidInput(
            "parent_asin", f"book {parent_asin!r} has an empty description: there is nothing to personalize"
        )
    return BookInput(
        record.parent_asin,
        record.title or record.parent_asin,
        record.description,
        record.genre,
        record.genre_group,
    )


def deadline_from(time_remaining: float | None) -> float | None:
    """A monotonic deadline from gRPC's time_remaining() (None or huge when the caller set none)."""
    if time_remaining is None or time_remaining > 10 * 365 * 86400:
        return None
    return time.monotonic() + time_remaining


def to_response(result: Result, job: Job) -> generation_pb2.PersonalizeResponse:
    return generation_pb2.PersonalizeResponse(
        text=result.text,
        **names.method_fields(result.method),
        model=result.model,
        adapter=result.adapter,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        latency_ms=result.latency_ms,
        warnings=result.warnings,
        user_id=job.profile.user_id,
        parent_asin=job.book.parent_asin,
    )
