"""Turning a PersonalizeRequest into a validated :class:`~gravity_generator.engine.Job` and back.

Every problem is reported against the request field it comes from: INVALID_ARGUMENT for malformed input,
NOT_FOUND for a user, book, method or adapter that does not exist. Every protocol comes through here
(gravity_generator.serving): the HTTP API translates its request into a PersonalizeRequest and renames the
fields in these errors to its own; the compare page looks readers and books up with :func:`reader_profile`
and :func:`catalog_book`.
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


def sampling_params(request: generation_pb2.PersonalizeRequest, cfg: GeneratorSettings) -> GenerationParams:
    """The request's sampling (unset fields take the server defaults; temperature 0 means greedy)."""
    temperature, top_p, max_new = cfg.temperature, cfg.top_p, cfg.max_new_tokens
    if request.HasField("sampling"):
        s = request.sampling
        if not 0.0 <= s.temperature <= 2.0:
            raise InvalidInput("sampling.temperature", f"must be within [0, 2], got {s.temperature}")
        if not 0.0 <= s.top_p <= 1.0:
            raise InvalidInput("sampling.top_p", f"must be within (0, 1] (0 = server default), got {s.top_p}")
        if s.max_new_tokens < 0 or s.max_new_tokens > cfg.max_new_tokens_limit:
            raise InvalidInput(
                "sampling.max_new_tokens",
                f"must be within [1, {cfg.max_new_tokens_limit}] (0 = server default), got {s.max_new_tokens}",
            )
        temperature = s.temperature
        top_p = s.top_p or cfg.top_p
        max_new = s.max_new_tokens or cfg.max_new_tokens
    seed = request.seed if request.HasField("seed") else cfg.seed
    if temperature <= 0.0:
        seed = None  # greedy decoding ignores it; leaving it out lets such requests share a batch
    return GenerationParams(temperature=temperature, top_p=top_p, max_tokens=max_new, seed=seed)


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
        if not inline.title.strip():
            raise InvalidInput("inline_book.title", "is required")
        if not inline.description.strip():
            raise InvalidInput("inline_book.description", "is required: there is nothing to personalize")
        book = BookInput("", inline.title.strip(), inline.description, inline.genre)

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


def reader_profile(app: GeneratorApp, user_id: str) -> profile_pb2.UserProfile:
    """A stored reader's profile (NOT_FOUND naming ``user_id`` when the store has none)."""
    if not user_id.strip():
        raise InvalidInput("user_id", "is empty")
    return app.profiles.get(user_id)


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
