"""gravity_core.web.errors: a failure gets the HTTP status of its gRPC code, through the same table."""

from __future__ import annotations

import grpc

from gravity_core.errors import ConfigError, InvalidInput, NotFound, RateLimited, Unavailable
from gravity_core.web.errors import http_error


def test_statuses_follow_the_grpc_codes_and_keep_the_field() -> None:
    cases = [
        (InvalidInput("sampling.top_p", "too big"), 400, grpc.StatusCode.INVALID_ARGUMENT, "sampling.top_p"),
        (NotFound("user_id", "no profile"), 404, grpc.StatusCode.NOT_FOUND, "user_id"),
        (RateLimited("busy"), 429, grpc.StatusCode.RESOURCE_EXHAUSTED, None),
        (Unavailable("loading"), 503, grpc.StatusCode.UNAVAILABLE, None),
        # a GravityError that is neither: the server's state does not allow the request yet
        (ConfigError("adapter not loaded"), 409, grpc.StatusCode.FAILED_PRECONDITION, None),
    ]
    for exc, status, code, field in cases:
        failure = http_error(exc)
        assert (failure.status, failure.grpc_code, failure.field) == (status, code, field), exc
        assert failure.message == str(exc)


def test_an_unexpected_error_is_a_500_that_hides_its_details() -> None:
    failure = http_error(KeyError("/secret/path"))
    assert failure.status == 500 and failure.grpc_code == grpc.StatusCode.INTERNAL
    assert "secret" not in failure.message and "KeyError" in failure.message
