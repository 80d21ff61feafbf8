"""The plaintext operations port of every service (``grpc.health_port``): probes and metrics over HTTP.

* ``GET /livez``: 200 from the moment the service has started (every listener open) until it stops, whatever
  its dependencies do (liveness and startup probes);
* ``GET /readyz``: 200 when the service is SERVING, 503 while, for example, Kafka is unreachable or during
  shutdown (the readiness probe takes the pod out of its Service);
* ``GET /metrics``: the Prometheus exposition of gravity_core.metrics.

It is plain HTTP on purpose: kubelet probes and Prometheus scrapes speak neither TLS nor mTLS nor carry the
bearer token, and nothing here reveals data. The gRPC port keeps the standard grpc.health.v1 service.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gravity_core.metrics import exposition

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class OpsServer:
    """``live()`` and ``ready()`` are asked at every probe."""

    def __init__(
        self, host: str, port: int, name: str, live: Callable[[], bool], ready: Callable[[], bool]
    ) -> None:
        checks = {"/livez": live, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, exposition(), PROMETHEUS_TEXT)
                elif path in checks:
                    ok = bool(checks[path]())
                    body = json.dumps(
                        {"service": name, "status": "SERVING" if ok else "NOT_SERVING"}
                    ).encode()
                    self._send(200 if ok else 503, body, "application/json")
                else:
                    self._send(404, b'{"error": "not found"}', "application/json")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # probes every few seconds would flood the log
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"ops-{name}", daemon=True)

    def start(self) -> OpsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
