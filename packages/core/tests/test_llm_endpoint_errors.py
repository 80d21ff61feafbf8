"""An endpoint's refusals become typed errors with the gRPC status a caller can act on (issue 15 item 6).

A real HTTP server on 127.0.0.1 answers the chat route with the status under test; the OpenAI backend must raise
RateLimited for 429 (RESOURCE_EXHAUSTED: retry later), ConfigError for 401/403 (FAILED_PRECONDITION: the
service's own key is wrong, not the caller's, so not UNAUTHENTICATED) and Unavailable for 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import grpc
import pytest
from gravity_testing import http_server, send_body

from gravity_core.config import LLMEndpoint
from gravity_core.errors import ConfigError, RateLimited, Unavailable
from gravity_core.grpc.server import status_for
from gravity_core.llm import GenerationParams
from gravity_core.llm.openai_backend import OpenAILLM


@pytest.fixture
def refusing_endpoint() -> Iterator[tuple[str, dict[str, Any]]]:
    answer: dict[str, Any] = {"status": 429, "calls": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answer["calls"] += 1
            body = json.dumps(
                {"error": {"message": f"refused with {answer['status']}", "type": "x"}}
            ).encode()
            send_body(self, answer["status"], body)

        def log_message(self, *_: Any) -> None:
            pass

    with http_server(Handler) as root:
        yield f"{root}/v1", answer


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (429, RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (401, ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
        (403, ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
        (503, Unavailable, grpc.StatusCode.UNAVAILABLE),
    ],
)
def test_endpoint_refusals_map_to_typed_errors_and_grpc_statuses(
    refusing_endpoint: tuple[str, dict[str, Any]], status: int, error: type[Exception], code: grpc.StatusCode
) -> None:
    base_url, answer = refusing_endpoint
    answer["status"] = status
    llm = OpenAILLM(LLMEndpoint(backend="openai", model="m", base_url=base_url, max_retries=0))
    try:
        with pytest.raises(error) as raised:
            llm.chat([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=4))
    finally:
        llm.close()
    assert answer["calls"] == 1
    assert str(status) in str(raised.value)
    assert status_for(raised.value)[0] == code
