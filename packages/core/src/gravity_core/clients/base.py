"""What every typed service client shares: a channel (TLS and token from GrpcSettings), deadlines, retries
of UNAVAILABLE while a server restarts, and one error type carrying the gRPC status and the server's message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from gravity_core.config import GrpcSettings
from gravity_core.errors import GravityError
from gravity_core.grpc import call_with_retry, make_channel

T = TypeVar("T")
# A client built with timeout_s=None still needs a horizon for its retries.
NO_DEADLINE_S = 24 * 3600.0


class ServiceCallError(GravityError):
    """A call a service refused or could not answer: ``code`` is the gRPC status, ``details`` its message
    (which names the offending field for INVALID_ARGUMENT and NOT_FOUND)."""

    def __init__(self, code: grpc.StatusCode, details: str, call: str = "") -> None:
        super().__init__(f"{code.name}: {details}" + (f" ({call})" if call else ""))
        self.code = code
        self.details = details
        self.call = call


# Codes whose details come from the transport, not from the service: the message names the call for these.
# A service's own refusal (INVALID_ARGUMENT, NOT_FOUND, ...) already names its field and stays as it is.
TRANSPORT_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)


def call_error(exc: grpc.RpcError, call: str = "") -> ServiceCallError:
    """``call`` names the RPC and its target in a transport error's message: "DEADLINE_EXCEEDED: Deadline
    Exceeded" alone does not say which of a demo's many calls timed out."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    return ServiceCallError(code, details or code.name, call if code in TRANSPORT_CODES else "")


def rpc_name(method: Any) -> str:
    """``Service/Method`` of a stub's callable (grpc keeps the path as ``_method``), or ""."""
    path = getattr(method, "_method", b"")
    path = path.decode() if isinstance(path, bytes) else str(path)
    return path.rsplit(".", 1)[-1]


class ServiceClient:
    """Base of the typed clients: ``with XClient(target) as client: ...``."""

    def __init__(
        self,
        target: str,
        settings: GrpcSettings | None = None,
        timeout_s: float | None = 600.0,
        channel: grpc.Channel | None = None,
        wait_for_ready: bool = True,
    ) -> None:
        self.target = target
        # Calls wait (up to their deadline) for a server that is restarting or not up yet instead of failing
        # fast; with the channel's retry policy a crash mid-call is retried on the new process.
        self.wait_for_ready = wait_for_ready
        self.timeout_s = timeout_s
        self._channel = channel or make_channel(target, settings)
        self._owns_channel = channel is None

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def _call(
        self,
        method: Callable[..., T],
        request: Any,
        timeout_s: float | None = None,
        retry: bool = True,
        retry_on: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.UNAVAILABLE,),
    ) -> T:
        """A unary call; idempotent ones (``retry``) are retried on ``retry_on`` codes until the deadline."""
        horizon = self.horizon(timeout_s)
        try:
            if not retry:
                return method(request, timeout=horizon, wait_for_ready=self.wait_for_ready)
            return call_with_retry(
                lambda remaining: method(request, timeout=remaining, wait_for_ready=self.wait_for_ready),
                horizon,
                retry_on,
            )
        except grpc.RpcError as exc:
            raise self.failed(exc, method, horizon) from None

    def horizon(self, timeout_s: float | None) -> float:
        """The deadline of a call: its own, else the client's, else none to speak of."""
        return timeout_s or self.timeout_s or NO_DEADLINE_S

    def failed(self, exc: grpc.RpcError, method: Any, timeout_s: float | None) -> ServiceCallError:
        """``exc`` as raised by a call of ``method`` (unary or streaming), naming the RPC, target and deadline."""
        deadline = f", deadline {timeout_s:g} s" if timeout_s else ""
        return call_error(exc, f"{rpc_name(method) or 'call'} at {self.target}{deadline}")

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
