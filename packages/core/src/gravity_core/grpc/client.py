"""Client channels to GRAVITY services: TLS and bearer token when configured, retries on UNAVAILABLE."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gravity_core.config import GrpcSettings
from gravity_core.errors import Unavailable

_RETRY_POLICY = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


class _TokenInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = [*(details.metadata or []), self._header]
        return (
            details._replace(metadata=metadata)
            if hasattr(details, "_replace")
            else _Details(details, metadata)
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, request_iterator: Any
    ) -> Any:
        return continuation(self._details(details), request_iterator)


class _Details(grpc.ClientCallDetails):
    def __init__(self, base: Any, metadata: list[tuple[str, str]]) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = metadata
        self.credentials = base.credentials
        self.wait_for_ready = getattr(base, "wait_for_ready", None)
        self.compression = getattr(base, "compression", None)


def make_channel(
    target: str, settings: GrpcSettings | None = None, token: str | None = None, tls_ca: str | None = None
) -> grpc.Channel:
    settings = settings or GrpcSettings()
    token = token or (settings.auth_token.get_secret_value() if settings.auth_token else None)
    ca = tls_ca or settings.tls_ca
    limit = settings.max_message_mb * 1024 * 1024
    options = [
        ("grpc.service_config", _RETRY_POLICY),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
    ]
    if settings.tls_cert or ca:
        # With a CA configured the servers require client certificates (mTLS): present our own.
        mtls = bool(ca and settings.tls_cert and settings.tls_key)
        creds = grpc.ssl_channel_credentials(
            root_certificates=Path(ca).read_bytes() if ca else None,
            private_key=Path(settings.tls_key).read_bytes() if mtls and settings.tls_key else None,
            certificate_chain=Path(settings.tls_cert).read_bytes() if mtls and settings.tls_cert else None,
        )
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target, options=options)
    if token:
        channel = grpc.intercept_channel(channel, _TokenInterceptor(token))
    return channel


def health_status(channel: grpc.Channel, service: str = "", timeout_s: float = 2.0) -> str:
    """ "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN" or "UNREACHABLE"."""
    try:
        resp = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
        )
    except grpc.RpcError as exc:
        return (
            "UNREACHABLE"
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            else exc.code().name
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def wait_for_serving(
    channel: grpc.Channel, service: str = "", timeout_s: float = 60.0, alive: Callable[[], bool] | None = None
) -> None:
    """Poll the health service until SERVING; ``alive`` lets callers stop early when a child process died."""
    deadline = time.monotonic() + timeout_s
    status = "UNREACHABLE"
    while time.monotonic() < deadline:
        status = health_status(channel, service)
        if status == "SERVING":
            return
        if alive is not None and not alive():
            raise Unavailable(f"service {service or '(server)'} exited before it was SERVING")
        time.sleep(0.2)
    raise Unavailable(f"service {service or '(server)'} not SERVING after {timeout_s:.0f}s (last: {status})")


# Trailer of a refusal for load: how many milliseconds to wait before asking again (the server's pushback)
RETRY_AFTER_MS = "retry-after-ms"


def pushback_s(exc: grpc.RpcError) -> float | None:
    """The wait a server asked for with its refusal (``retry-after-ms``); None when it named none."""
    trailers = exc.trailing_metadata() if isinstance(exc, grpc.Call) else None
    for key, value in trailers or ():
        if key == RETRY_AFTER_MS:
            try:
                return max(int(value), 0) / 1000
            except ValueError:
                return None
    return None


def call_with_retry(
    call: Callable[[float], Any],
    timeout_s: float,
    retry_on: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.UNAVAILABLE,),
    max_backoff_s: float = 5.0,
) -> Any:
    """``call(remaining_seconds)`` until it succeeds, retrying ``retry_on`` codes with backoff until the
    overall deadline.

    RESOURCE_EXHAUSTED in ``retry_on`` is retried only with the server's ``retry-after-ms`` trailer (a
    refusal for load, RateLimited), after at least that long.

    The channel's retry policy covers blips (gRPC caps it at 5 attempts); this covers a server that is
    restarting — down, then up but still loading its model (UNAVAILABLE) — for as long as the caller is
    willing to wait. Use it for idempotent calls only.

    A deadline that runs out while the server keeps answering a retryable code is reported as that code (the
    cause), not as DEADLINE_EXCEEDED: the last attempt's budget often ends inside the channel's own retry
    backoff, which would otherwise turn "the backend is down" into "the server is slow" at random.
    """
    deadline = time.monotonic() + timeout_s
    backoff = 0.2
    refused: grpc.RpcError | None = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            return call(max(remaining, 0.001))
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED and refused is not None:
                raise refused from None
            if code not in retry_on:
                raise
            wait = backoff
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                # a message over gRPC's size limit is final; only a refusal for load says when to return
                pushback = pushback_s(exc)
                if pushback is None:
                    raise
                wait = max(wait, pushback)
            refused = exc
            if deadline - time.monotonic() <= wait:
                raise
        time.sleep(wait)
        backoff = min(backoff * 2, max_backoff_s)
