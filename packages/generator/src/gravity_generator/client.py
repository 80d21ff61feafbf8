"""A typed Python client for gravity.v1.GeneratorService.

    with GeneratorClient("127.0.0.1:50054") as client:
        reply = client.personalize(user_id="A4AAGP21...", parent_asin="1695744128", method="gravity")
        print(reply.text)
        for piece in client.stream(user_id=..., parent_asin=..., method="lamp"):
            print(piece if isinstance(piece, str) else "", end="")

Failures raise :class:`GeneratorCallError` (a GravityError) carrying the gRPC status code and the server's
message, which names the offending field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from gravity.v1 import generation_pb2, generation_pb2_grpc, profile_pb2
from gravity_core.config import GrpcSettings
from gravity_core.errors import GravityError
from gravity_core.grpc import call_with_retry, make_channel

# A client built with timeout_s=None still needs a horizon for its retries.
_NO_DEADLINE_S = 24 * 3600.0


class GeneratorCallError(GravityError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Sampling:
    """Unset fields take the server's defaults; temperature 0 means greedy decoding."""

    temperature: float = 0.0
    top_p: float = 0.0
    max_new_tokens: int = 0

    def to_proto(self) -> generation_pb2.SamplingParams:
        return generation_pb2.SamplingParams(
            temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens
        )


def build_request(
    *,
    method: str,
    user_id: str | None = None,
    profile: profile_pb2.UserProfile | None = None,
    parent_asin: str | None = None,
    title: str | None = None,
    description: str | None = None,
    genre: str = "",
    sampling: Sampling | None = None,
    seed: int | None = None,
    adapter: str = "",
) -> generation_pb2.PersonalizeRequest:
    """A PersonalizeRequest: a user by id or an inline profile, a book by parent_asin or title + description."""
    request = generation_pb2.PersonalizeRequest(method=method, adapter=adapter)
    if profile is not None:
        request.profile.CopyFrom(profile)
    elif user_id is not None:
        request.user_id = user_id
    if parent_asin is not None:
        request.parent_asin = parent_asin
    elif title is not None or description is not None:
        request.inline_book.CopyFrom(
            generation_pb2.InlineBook(title=title or "", description=description or "", genre=genre)
        )
    if sampling is not None:
        request.sampling.CopyFrom(sampling.to_proto())
    if seed is not None:
        request.seed = seed
    return request


class GeneratorClient:
    def __init__(
        self,
        target: str,
        settings: GrpcSettings | None = None,
        timeout_s: float | None = 600.0,
        channel: grpc.Channel | None = None,
        wait_for_ready: bool = True,
    ) -> None:
        self.target = target
        # Calls wait (up to their deadline) for a generator that is restarting or not up yet instead of
        # failing fast; with the channel's retry policy a crash mid-call is retried on the new process.
        self.wait_for_ready = wait_for_ready
        self._channel = channel or make_channel(target, settings)
        self._owns_channel = channel is None
        self._stub = generation_pb2_grpc.GeneratorServiceStub(self._channel)
        self.timeout_s = timeout_s

    def personalize(
        self, *, timeout_s: float | None = None, **request: Any
    ) -> generation_pb2.PersonalizeResponse:
        """Keyword arguments as :func:`build_request`; or ``request=<PersonalizeRequest>``."""
        message = request.pop("request", None) or build_request(**request)
        try:
            return call_with_retry(
                lambda remaining: self._stub.Personalize(
                    message, timeout=remaining, wait_for_ready=self.wait_for_ready
                ),
                timeout_s or self.timeout_s or _NO_DEADLINE_S,
            )
        except grpc.RpcError as exc:
            raise _call_error(exc) from None

    def stream(
        self, *, timeout_s: float | None = None, **request: Any
    ) -> Iterator[str | generation_pb2.PersonalizeResponse]:
        """Text deltas as they are generated, then the final PersonalizeResponse."""
        message = request.pop("request", None) or build_request(**request)
        call = self._stub.PersonalizeStream(
            generation_pb2.PersonalizeStreamRequest(request=message),
            timeout=timeout_s or self.timeout_s,
            wait_for_ready=self.wait_for_ready,
        )
        try:
            for event in call:
                if event.WhichOneof("event") == "delta":
                    yield event.delta
                elif event.WhichOneof("event") == "final":
                    yield event.final
        except grpc.RpcError as exc:
            raise _call_error(exc) from None
        finally:
            call.cancel()

    def list_methods(self, timeout_s: float | None = 30.0) -> list[generation_pb2.MethodInfo]:
        try:
            return list(
                self._stub.ListMethods(
                    generation_pb2.ListMethodsRequest(), timeout=timeout_s, wait_for_ready=self.wait_for_ready
                ).methods
            )
        except grpc.RpcError as exc:
            raise _call_error(exc) from None

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> GeneratorClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _call_error(exc: grpc.RpcError) -> GeneratorCallError:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    return GeneratorCallError(code, details or code.name)
