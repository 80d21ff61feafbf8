"""The generator's HTTP side, next to gRPC in the same process and on the same serving path
(gravity_generator.serving: no second model, no second implementation): the OpenAI-compatible API under
``/v1``, the compare page under ``/compare``, ``/healthz``.

Auth is gRPC's: with ``grpc.auth_token`` set, every route but ``/healthz`` and the page's stylesheet needs
``Authorization: Bearer <token>`` (the compare page also takes the token once, in a login form). TLS, when
``grpc.tls_cert``/``tls_key`` are set, is served with the same files (see gravity_generator.service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from gravity_core.config import Settings
from gravity_generator.serving import PersonalizeServing
from gravity_generator.settings import GeneratorSettings
from gravity_generator.web.compare import CompareBoard
from gravity_generator.web.openai_api import OpenAIApi
from gravity_generator.web.pages import ComparePages


def auth_token(settings: Settings) -> str | None:
    token = settings.grpc.auth_token
    return token.get_secret_value() if token is not None and token.get_secret_value() else None


@dataclass
class GeneratorWeb:
    """The ASGI application and what it owns (the compare page's background generations)."""

    asgi: Starlette
    api: OpenAIApi
    board: CompareBoard

    def close(self) -> None:
        self.board.close()


def create_web_app(
    serving: PersonalizeServing,
    settings: Settings,
    *,
    ready: Callable[[], bool] | None = None,
    not_ready_reason: Callable[[], str] | None = None,
    cfg: GeneratorSettings | None = None,
) -> GeneratorWeb:
    """``ready``/``not_ready_reason`` come from the service (readiness includes Kafka); without them,
    readiness is "the model and adapters are loaded". ``cfg`` (default: the app's) sizes the HTTP limits."""
    app = serving.app
    cfg = cfg or app.cfg
    token = auth_token(settings)
    api = OpenAIApi(serving, token, cfg.http_max_inflight)
    board = CompareBoard(serving, cfg.compare_cache_entries, cfg.compare_temperature)
    pages = ComparePages(
        serving, board, token, settings.evaluation, secure_cookies=bool(settings.grpc.tls_cert)
    )
    is_ready = ready or app.loaded.is_set
    reason = not_ready_reason or (lambda: "the model, catalog and adapters are loading")

    async def healthz(request: Request) -> Response:
        if is_ready():
            return JSONResponse({"status": "serving"})
        return JSONResponse(
            {"status": "not_serving", "reason": reason()}, status_code=503, headers={"retry-after": "5"}
        )

    routes = [
        Route("/healthz", healthz),
        Route("/v1/models", api.list_models),
        Route("/v1/models/{model:path}", api.get_model),
        Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
        Mount("/", app=pages.asgi()),
    ]
    return GeneratorWeb(Starlette(routes=routes), api, board)
