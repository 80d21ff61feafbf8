"""Errors as HTTP statuses, through the same table that turns them into gRPC status codes.

:func:`gravity_core.grpc.server.status_for` decides the gRPC code and the client-facing message of an
exception; the code becomes an HTTP status by the mapping of ``google.rpc.Code`` that grpc-gateway and Google
APIs use, so a request fails the same way over gRPC and over HTTP. One deviation: FAILED_PRECONDITION is 409
Conflict, not 400. It means the request is well-formed but the server's state does not allow it yet (a
method whose adapter is not loaded, a stored profile without the summary a method needs); HTTP clients
treat 400 as "fix your request", which would send them looking in the wrong place.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from gravity_core.errors import InvalidInput, NotFound
from gravity_core.grpc.server import status_for

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


@dataclass(frozen=True)
class HttpError:
    status: int
    grpc_code: grpc.StatusCode
    message: str
    # The request field at fault (InvalidInput / NotFound), else None.
    field: str | None


def http_error(exc: BaseException) -> HttpError:
    """How ``exc`` is answered over HTTP (anything unexpected is a 500 whose message hides the details)."""
    code, message = status_for(exc)
    field = exc.field if isinstance(exc, InvalidInput | NotFound) else None
    return HttpError(HTTP_STATUS.get(code, 500), code, message, field)
