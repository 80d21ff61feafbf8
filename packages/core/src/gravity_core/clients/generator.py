"""A typed Python client for gravity.v1.GeneratorService.

    with GeneratorClient("127.0.0.1:50054") as client:
        reply = client.personalize(user_id="A4AAGP21...", parent_asin="1695744128", method=names.GRAVITY)
        print(names.method_name(reply), reply.text)
        for piece in client.stream(user_id=..., parent_asin=..., method=names.LAMP):
            print(piece if isinstance(piece, str) else "", end="")

Failures raise :class:`~gravity_core.clients.base.ServiceCallError` (also importable as GeneratorCallError)
carrying the gRPC status code and the server's message, which names the offending field. ``method`` is a
name from :mod:`gravity_core.names` (or a ``gravity.v1.Method`` value); replies carry the enum, read back
with :func:`gravity_core.names.method_name`. The client needs
only gravity-core's base install (no torch).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from gravity.v1 import generation_pb2, generation_pb2_grpc, profile_pb2
from gravity_core import names
from gravity_core.clients.base import ServiceCallError, ServiceClient
from gravity_core.grpc import call_with_retry

GeneratorCallError = ServiceCallError

# A description may be asked for again: the server refuses one it has no room for (RESOURCE_EXHAUSTED) or is
# restarting (UNAVAILABLE) before it starts writing.
RETRY_BUSY = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


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
    method: str | int,
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
    """A PersonalizeRequest: a user by id or an inline profile, a book by parent_asin or title + description;
    ``method`` a name (``names.GRAVITY``, ``"gravity-no-values"``) or a ``gravity.v1.Method`` value."""
    request = generation_pb2.PersonalizeRequest(**names.method_fields(method), adapter=adapter)
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


class GeneratorClient(ServiceClient):
    """gravity.v1.GeneratorService: personalize, stream, list methods."""

    def __init__(self, target: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(target, *args, **kwargs)
        self._stub = generation_pb2_grpc.GeneratorServiceStub(self.channel)

    def personalize(
        self, *, timeout_s: float | None = None, **request: Any
    ) -> generation_pb2.PersonalizeResponse:
        """Keyword arguments as :func:`build_request`; or ``request=<PersonalizeRequest>``."""
        message = request.pop("request", None) or build_request(**request)
        return self._call(self._stub.Personalize, message, timeout_s, retry_on=RETRY_BUSY)

    def stream(
        self, *, timeout_s: float | None = None, **request: Any
    ) -> Iterator[str | generation_pb2.PersonalizeResponse]:
        """Text deltas as they are generated, then the final PersonalizeResponse."""
        message = generation_pb2.PersonalizeStreamRequest(
            request=request.pop("request", None) or build_request(**request)
        )
        horizon = self.horizon(timeout_s)
        calls: list[Any] = []

        def start(remaining: float) -> list[generation_pb2.PersonalizeStreamResponse]:
            # a refusal (busy, restarting) comes before the first event: nothing was shown yet, so retry
            call = self._stub.PersonalizeStream(
                message, timeout=remaining, wait_for_ready=self.wait_for_ready
            )
            calls.append(call)
            return list(itertools.islice(call, 1))

        try:
            first = call_with_retry(start, horizon, RETRY_BUSY)
            for event in itertools.chain(first, calls[-1]):
                if event.WhichOneof("event") == "delta":
                    yield event.delta
                elif event.WhichOneof("event") == "final":
                    yield event.final
        except grpc.RpcError as exc:
            raise self.failed(exc, self._stub.PersonalizeStream, horizon) from None
        finally:
            for call in calls:
                call.cancel()

    def list_methods(self, timeout_s: float | None = 30.0) -> list[generation_pb2.MethodInfo]:
        return list(
            self._call(
                self._stub.ListMethods, generation_pb2.ListMethodsRequest(), timeout_s, retry=False
            ).methods
        )
