"""An ASGI application served by uvicorn on a thread of a running service.

The socket is bound before the thread starts, so a port that is taken fails :meth:`HttpServer.start` at
once with a ConfigError naming the address, and port 0 gives a free port that :attr:`HttpServer.port`
reports. TLS uses the service's certificate and key (and, with a CA, requires client certificates), like
its gRPC port. :meth:`HttpServer.stop` is graceful: the listener closes, requests in flight get ``grace_s``
to finish.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Any

from gravity_core.errors import ConfigError
from gravity_core.logging import get_logger

log = get_logger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (0 = any free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot resolve the HTTP address {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot bind HTTP to {host}:{port}: {exc.strerror or exc}") from None
    return sock


class HttpServer:
    def __init__(
        self,
        app: Any,
        name: str,
        host: str,
        port: int,
        *,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_ca: str | None = None,
        grace_s: float = 10.0,
    ) -> None:
        self.app = app
        self.name = name
        self.host = host
        self.requested_port = port
        self.tls = bool(tls_cert and tls_key)
        self._tls = (tls_cert, tls_key, tls_ca)
        self.grace_s = grace_s
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> int:
        import uvicorn

        cert, key, ca = self._tls
        sock = bind(self.host, self.requested_port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_config=None,  # the process's logging (structlog) stays in charge
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=max(1, round(self.grace_s)),
            ssl_certfile=cert if self.tls else None,
            ssl_keyfile=key if self.tls else None,
            ssl_ca_certs=ca if self.tls and ca else None,
            ssl_cert_reqs=ssl.CERT_REQUIRED if self.tls and ca else ssl.CERT_NONE,
        )
        self._server = uvicorn.Server(config)

        def serve() -> None:
            try:
                self._server.run(sockets=[sock])
            except BaseException as exc:  # reported by start() or stop(), never lost
                self._error = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=serve, name=f"http-{self.name}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                reason = f"{type(self._error).__name__}: {self._error}" if self._error else "did not start"
                raise ConfigError(f"{self.name} HTTP server on {self.host}:{self.port}: {reason}")
            time.sleep(0.02)
        log.info("http_started", service=self.name, url=self.url, tls=self.tls)
        return self.port

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(self.grace_s + 5)
        log.info("http_stopped", service=self.name)
