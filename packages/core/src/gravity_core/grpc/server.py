"""The gRPC server every GRAVITY service runs in.

* standard health service (``grpc.health.v1``): SERVING once ready, NOT_SERVING while a dependency such as
  Kafka is down or during shutdown;
* server reflection, so grpcurl and friends work;
* errors raised by servicers become status codes with a message naming the field:
  InvalidInput -> INVALID_ARGUMENT, NotFound -> NOT_FOUND, RateLimited -> RESOURCE_EXHAUSTED (with its
  ``retry-after-ms`` trailer, which the clients' retry honours),
  Unavailable -> UNAVAILABLE,
  DeadlineExceeded -> DEADLINE_EXCEEDED, other GravityError -> FAILED_PRECONDITION, anything else ->
  INTERNAL (logged with its traceback, never sent to the client);
* optional bearer-token auth (only the health Check stays open, for probes; compared in constant time) and TLS;
* a ``liveness`` health name that stays SERVING while the process serves (liveness probes must not fail
  when only a dependency is down), and an optional plaintext HTTP operations port (``grpc.health_port``:
  /livez, /readyz, /metrics; gravity_core.ops) because probes and scrapes speak neither TLS nor mTLS;
* Prometheus metrics per RPC (gravity_core.metrics);
* graceful shutdown on SIGTERM/SIGINT: health flips to NOT_SERVING, in-flight calls get ``grace_s``.
"""

from __future__ import annotations

import hmac
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gravity_core.config import GrpcSettings
from gravity_core.errors import ConfigError, GravityError, InvalidInput, NotFound, RateLimited, Unavailable
from gravity_core.grpc.client import RETRY_AFTER_MS
from gravity_core.logging import get_logger
from gravity_core.metrics import RPC_REQUESTS, RPC_SECONDS
from gravity_core.ops import OpsServer

log = get_logger(__name__)
HEALTH_SERVICE = "grpc.health.v1.Health"
# Health name for liveness probes: SERVING from start until shutdown, whatever ready() says.
LIVENESS_SERVICE = "liveness"


class DeadlineExceeded(GravityError):
    pass


def check_deadline(context: grpc.ServicerContext, needed_s: float = 0.0) -> None:
    """Fail fast when the caller's deadline leaves less than ``needed_s`` or the call was cancelled."""
    if not context.is_active():
        raise DeadlineExceeded("the call was cancelled")
    remaining = context.time_remaining()
    if remaining is not None and remaining < needed_s:
        raise DeadlineExceeded(f"deadline leaves {remaining:.1f}s, this call needs about {needed_s:.1f}s")


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message of an exception (also used by the HTTP surfaces)."""
    if isinstance(exc, grpc.RpcError) and isinstance(exc, grpc.Call):  # a downstream call failed: pass it on
        return exc.code(), f"downstream: {exc.details()}"
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, RateLimited):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, Unavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, DeadlineExceeded):
        return grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
    if isinstance(exc, GravityError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


class _ErrorInterceptor(grpc.ServerInterceptor):
    """Maps exceptions to status codes, logs every call with its duration and counts it in the metrics."""

    def __init__(self, service: str) -> None:
        self.service = service

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method

        def fail(exc: BaseException, context: grpc.ServicerContext) -> None:
            code, message = status_for(exc)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("rpc_internal_error", method=method)
            if isinstance(exc, RateLimited):
                context.set_trailing_metadata(((RETRY_AFTER_MS, str(round(exc.retry_after_s * 1000))),))
            context.abort(code, message)

        rpc = method.rsplit("/", 1)[-1]

        def observe(context: grpc.ServicerContext, started: float) -> None:
            code = context.code() or grpc.StatusCode.OK
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            RPC_REQUESTS.labels(self.service, rpc, name).inc()
            RPC_SECONDS.labels(self.service, rpc).observe(time.perf_counter() - started)

        def unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
                started = time.perf_counter()
                try:
                    return behavior(request, context)
                except Exception as exc:
                    if _already_failed(exc, context):
                        raise
                    fail(exc, context)
                finally:
                    observe(context, started)
                    log.debug("rpc", method=method, ms=round((time.perf_counter() - started) * 1000, 1))

            return wrapped

        def streaming(behavior: Callable[..., Any]) -> Callable[..., Any]:
            def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                started = time.perf_counter()
                try:
                    yield from behavior(request, context)
                except Exception as exc:
                    if _already_failed(exc, context):
                        raise
                    fail(exc, context)
                finally:
                    observe(context, started)

            return wrapped

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer
            )
        return handler


def _already_failed(exc: BaseException, context: grpc.ServicerContext) -> bool:
    """True after context.abort() (which raises a bare Exception once the code is set)."""
    return context.code() is not None


class _AuthInterceptor(grpc.ServerInterceptor):
    """Every RPC needs the bearer token except the health Check: probes must not need secrets, and Check is
    answered at once. Health.Watch is a stream that holds a server thread for as long as the caller likes, so
    anonymous callers could starve the pool; on the main port it needs the token like everything else (the
    plaintext health-only port keeps serving both to probes)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")

        def deny_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
            yield from ()

        # A denial must have the shape of the method it answers, or gRPC reports the mismatch instead.
        self._deny = {
            "unary_unary": grpc.unary_unary_rpc_method_handler(deny),
            "unary_stream": grpc.unary_stream_rpc_method_handler(deny_stream),
            "stream_unary": grpc.stream_unary_rpc_method_handler(deny),
            "stream_stream": grpc.stream_stream_rpc_method_handler(deny_stream),
        }

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        if details.method == f"/{HEALTH_SERVICE}/Check":
            return continuation(details)
        metadata = dict(details.invocation_metadata or ())
        given = metadata.get("authorization", "")
        given_bytes = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(given_bytes, self._expected):
            return continuation(details)
        handler = continuation(details)
        for kind, denial in self._deny.items():
            if handler is not None and getattr(handler, kind, None) is not None:
                return denial
        return self._deny["unary_unary"]


class ServiceHost:
    """Owns one grpc.Server with health, reflection and the interceptors; services add their servicers."""

    def __init__(
        self, name: str, settings: GrpcSettings, port: int | None = None, host: str | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.host = host or settings.host
        self.port = settings.port(name) if port is None else port
        interceptors: list[grpc.ServerInterceptor] = []
        if settings.auth_token is not None and settings.auth_token.get_secret_value():
            interceptors.append(_AuthInterceptor(settings.auth_token.get_secret_value()))
        interceptors.append(_ErrorInterceptor(name))
        limit = settings.max_message_mb * 1024 * 1024
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix=f"grpc-{name}"),
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names: list[str] = []
        self._stopped = threading.Event()
        self._live = threading.Event()
        self.bound_port = 0
        self.ops: OpsServer | None = None
        self.health_bound_port = 0
        self.serving = False

    def add(self, register: Callable[[Any, grpc.Server], None], servicer: Any, full_name: str) -> None:
        """``register`` is the generated ``add_XServicer_to_server``; ``full_name`` e.g. gravity.v1.ProfilerService."""
        register(servicer, self.server)
        self._service_names.append(full_name)

    def mark_live(self) -> None:
        self._live.set()
        self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)

    def set_serving(self, serving: bool) -> None:
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self._service_names]:
            self.health.set(name, status)

    def start(self, ready: bool = True, live: bool = True) -> int:
        """Listen; ``live`` False keeps liveness NOT_SERVING (gRPC and /livez) until :meth:`mark_live`, for a
        service that still opens its other listeners after the gRPC port."""
        reflection.enable_server_reflection(
            [*self._service_names, HEALTH_SERVICE, reflection.SERVICE_NAME], self.server
        )
        address = f"{self.host}:{self.port}"
        if self.settings.tls_cert and self.settings.tls_key:
            creds = grpc.ssl_server_credentials(
                [(Path(self.settings.tls_key).read_bytes(), Path(self.settings.tls_cert).read_bytes())],
                root_certificates=Path(self.settings.tls_ca).read_bytes() if self.settings.tls_ca else None,
                require_client_auth=bool(self.settings.tls_ca),
            )
            self.bound_port = self.server.add_secure_port(address, creds)
        else:
            self.bound_port = self.server.add_insecure_port(address)
        if not self.bound_port:
            raise ConfigError(f"cannot bind {self.name} to {address}")
        self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server.start()
        if live:
            self.mark_live()
        self.set_serving(ready)
        if self.settings.health_port is not None:
            self.ops = OpsServer(
                self.host,
                self.settings.health_port,
                self.name,
                live=lambda: self._live.is_set() and not self._stopped.is_set(),
                ready=lambda: self.serving and not self._stopped.is_set(),
            ).start()
            self.health_bound_port = self.ops.port
            log.info("ops_port", service=self.name, address=f"{self.host}:{self.ops.port}")
        log.info(
            "grpc_started",
            service=self.name,
            address=f"{self.host}:{self.bound_port}",
            tls=bool(self.settings.tls_cert),
            auth=self.settings.auth_token is not None,
        )
        return self.bound_port

    def stop(self, grace_s: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(self.settings.grace_s if grace_s is None else grace_s).wait()
        if self.ops is not None:
            self.ops.stop()
        log.info("grpc_stopped", service=self.name)

    def wait_for_termination(self, on_stop: Callable[[], None] | None = None) -> None:
        """Block until SIGTERM/SIGINT (main thread) or :meth:`stop`; then run ``on_stop`` and shut down."""
        stop_requested = threading.Event()

        def handle(signum: int, _frame: Any) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name, service=self.name)
            stop_requested.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handle)
            signal.signal(signal.SIGINT, handle)
        while not stop_requested.is_set() and not self._stopped.is_set():
            stop_requested.wait(0.5)
        self.health.enter_graceful_shutdown()
        if on_stop is not None:
            on_stop()
        self.stop()
