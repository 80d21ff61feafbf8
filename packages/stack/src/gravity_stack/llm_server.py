"""`gravity serve llm`: the embedded model behind an OpenAI-compatible HTTP API, vLLM-style.

For development and tests: it lets every OpenAI-backend code path (chat, streaming, log-probabilities,
LoRA adapters selected by model name, runtime adapter loading through ``/v1/load_lora_adapter``) run
against a real server process on a laptop. Production uses vLLM with the same API.

Endpoints: GET /v1/models, POST /v1/chat/completions (stream, logprobs/top_logprobs), POST
/v1/load_lora_adapter, POST /v1/unload_lora_adapter, GET /health. Configure with ``[llm_server]``.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from gravity_core.config import LLMEndpoint, Settings
from gravity_core.errors import GravityError, InvalidInput, NotFound
from gravity_core.llm.types import GenerationParams
from gravity_core.logging import configure_from_settings, get_logger

log = get_logger(__name__)


class LLMServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8008
    # The model served; defaults to llm.writer (or llm.defaults).
    model: LLMEndpoint | None = None
    # Name clients use for the base model (vLLM: --served-model-name).
    served_model_name: str = ""
    api_key: SecretStr | None = None


class _Handler(BaseHTTPRequestHandler):
    server: OpenAICompatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http", request=format % args)

    # ----------------------------------------------------------- plumbing
    def _send_json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send_json(
            status,
            {
                "error": {"message": message, "type": kind, "code": status},
                "object": "error",
                "message": message,
            },
        )

    def _authorized(self) -> bool:
        key = self.server.api_key
        if not key:
            return True
        given = (self.headers.get("Authorization") or "").encode()
        if hmac.compare_digest(given, f"Bearer {key}".encode()):
            return True
        self._error(401, "invalid API key", "authentication_error")
        return False

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise InvalidInput("body", f"not JSON: {exc.msg}") from None
        if not isinstance(body, dict):
            raise InvalidInput("body", "must be a JSON object")
        return body

    def do_GET(self) -> None:
        if self.path in ("/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
            return
        if not self._authorized():
            return
        if self.path == "/v1/models":
            now = int(time.time())
            names = [self.server.model_name, *sorted(self.server.llm.adapters)]
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {
                            "id": n,
                            "object": "model",
                            "created": now,
                            "owned_by": "gravity",
                            "parent": None if n == self.server.model_name else self.server.model_name,
                        }
                        for n in names
                    ],
                },
            )
            return
        self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        if not self._authorized():
            return
        routes = {
            "/v1/chat/completions": self._chat,
            "/v1/load_lora_adapter": self._load_adapter,
            "/v1/unload_lora_adapter": self._unload_adapter,
        }
        route = routes.get(self.path)
        if route is None:
            self._error(404, f"no route {self.path}")
            return
        try:
            route(self._body())
        except InvalidInput as exc:
            self._error(400, str(exc))
        except NotFound as exc:
            self._error(404, str(exc), "not_found_error")
        except GravityError as exc:
            self._error(400, str(exc))
        except Exception as exc:
            log.exception("llm_server_error", path=self.path)
            self._error(500, f"internal error: {type(exc).__name__}", "server_error")

    # ----------------------------------------------------------- routes
    def _adapter_for(self, model: str) -> str | None:
        if model in ("", self.server.model_name):
            return None
        if model in self.server.llm.adapters:
            return model
        raise NotFound("model", f"The model `{model}` does not exist.")

    def _chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidInput("messages", "must be a non-empty list")
        for i, m in enumerate(messages):
            if (
                not isinstance(m, dict)
                or not isinstance(m.get("content"), str)
                or m.get("role") not in ("system", "user", "assistant")
            ):
                raise InvalidInput(
                    f"messages[{i}]", "needs a role (system, user, assistant) and string content"
                )
        adapter = self._adapter_for(str(body.get("model") or ""))
        stop = body.get("stop") or ()
        params = GenerationParams(
            temperature=float(body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0),
            top_p=float(body.get("top_p") or 1.0),
            max_tokens=int(body.get("max_completion_tokens") or body.get("max_tokens") or 256),
            seed=body.get("seed"),
            stop=tuple([stop] if isinstance(stop, str) else stop),
        )
        model_name = str(body.get("model") or self.server.model_name)
        rid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if body.get("stream"):
            self._stream(
                messages,
                params,
                adapter,
                model_name,
                rid,
                created,
                bool((body.get("stream_options") or {}).get("include_usage")),
            )
            return
        llm = self.server.llm
        logprobs = None
        if body.get("logprobs"):
            completion, tokens = llm.chat_with_logprobs(
                messages, params, adapter, top_k=int(body.get("top_logprobs") or 0)
            )
            logprobs = {
                "content": [
                    {
                        "token": t,
                        "logprob": lp,
                        "bytes": list(t.encode()),
                        "top_logprobs": [
                            {"token": a, "logprob": alp, "bytes": list(a.encode())}
                            for a, alp in alts[: int(body.get("top_logprobs") or 0)]
                        ],
                    }
                    for t, lp, alts in tokens
                ]
            }
        else:
            completion = llm.chat(messages, params, adapter)
        self._send_json(
            200,
            {
                "id": rid,
                "object": "chat.completion",
                "created": created,
                "model": model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": completion.text},
                        "finish_reason": completion.finish_reason,
                        "logprobs": logprobs,
                    }
                ],
                "usage": {
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "total_tokens": completion.prompt_tokens + completion.completion_tokens,
                },
            },
        )

    def _stream(
        self,
        messages: list[dict[str, str]],
        params: GenerationParams,
        adapter: str | None,
        model: str,
        rid: str,
        created: int,
        include_usage: bool,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def chunk(
            delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None
        ) -> None:
            payload: dict[str, Any] = {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage:
                payload["usage"] = usage
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        chunk({"role": "assistant", "content": ""})
        for event in self.server.llm.stream_chat(messages, params, adapter):
            if event.delta:
                chunk({"content": event.delta})
            if event.final is not None:
                chunk({}, finish=event.final.finish_reason)
                if include_usage:
                    chunk(
                        {},
                        usage={
                            "prompt_tokens": event.final.prompt_tokens,
                            "completion_tokens": event.final.completion_tokens,
                            "total_tokens": event.final.prompt_tokens + event.final.completion_tokens,
                        },
                    )
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _load_adapter(self, body: dict[str, Any]) -> None:
        name, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(name, str) or not name:
            raise InvalidInput("lora_name", "is required")
        if not isinstance(path, str) or not path:
            raise InvalidInput("lora_path", "is required")
        if name in self.server.llm.adapters:
            self._error(400, f"The lora adapter '{name}' has already been loaded.")
            return
        self.server.llm.load_adapter(name, path)
        self._send_text(200, f"Success: LoRA adapter '{name}' added successfully.")

    def _unload_adapter(self, body: dict[str, Any]) -> None:
        name = body.get("lora_name")
        if not isinstance(name, str) or not name:
            raise InvalidInput("lora_name", "is required")
        self.server.llm.unload_adapter(name)
        self._send_text(200, f"Success: LoRA adapter '{name}' removed successfully.")

    def _send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class OpenAICompatServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        llm: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str = "",
        api_key: str | None = None,
    ) -> None:
        super().__init__((host, port), _Handler)
        self.llm = llm
        self.model_name = model_name or llm.info.name
        self.api_key = api_key
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}/v1"

    def start(self) -> OpenAICompatServer:
        self._thread = threading.Thread(target=self.serve_forever, name="openai-compat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def run_service(settings: Settings, port: int | None = None) -> None:
    """Entry point of `gravity serve llm`."""
    from gravity_core.llm.embedded import EmbeddedLLM

    configure_from_settings(settings)
    cfg = settings.section("llm_server", LLMServerSettings)
    endpoint = cfg.model or settings.llm.role("writer")
    if endpoint.backend != "embedded":
        raise InvalidInput("llm_server.model.backend", "the dev server serves embedded models only")
    llm = EmbeddedLLM(endpoint)
    server = OpenAICompatServer(
        llm,
        cfg.host,
        port if port is not None else cfg.port,
        cfg.served_model_name or endpoint.model,
        cfg.api_key.get_secret_value() if cfg.api_key else None,
    )
    log.info("llm_server_listening", base_url=server.base_url, model=server.model_name)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
