"""Backend for any OpenAI-compatible endpoint: OpenAI, vLLM (LoRA adapters by model name), llama.cpp.

Choice scoring asks for one token with ``top_logprobs`` and reads each choice's probability from the
first-token distribution; an endpoint without log-probabilities falls back to generating a short answer
and parsing it. Adapters are served by vLLM under their own model name; :meth:`load_adapter` uses vLLM's
runtime endpoint (``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` on the server).
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from gravity_core.config import LLMEndpoint
from gravity_core.errors import ConfigError, InvalidInput, NotFound, RateLimited, Unavailable
from gravity_core.llm.types import (
    ChoiceScores,
    Completion,
    Conversation,
    GenerationParams,
    LLMClient,
    ModelInfo,
    StreamEvent,
    Usage,
    parse_choice,
    resolve_adapters,
)
from gravity_core.logging import get_logger

log = get_logger(__name__)
_TOP_LOGPROBS = 20


class OpenAILLM(LLMClient):
    def __init__(self, endpoint: LLMEndpoint) -> None:
        if not endpoint.base_url and not endpoint.resolved_api_key():
            raise ConfigError(
                f"llm backend 'openai' for model {endpoint.model!r} needs base_url (vLLM, llama.cpp) or an API key "
                "(OPENAI_API_KEY or llm.<role>.api_key)"
            )
        self.endpoint = endpoint
        self.client = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.resolved_api_key() or "EMPTY",
            timeout=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
        )
        self.usage = Usage()
        self._adapters: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=max(1, endpoint.concurrency), thread_name_prefix="openai")

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.endpoint.model, "openai", 0, sorted(self._adapters), self.endpoint.logprobs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    def _model_for(self, adapter: str | None) -> str:
        return adapter or self.endpoint.model

    def _call(self, **kwargs: Any) -> Any:
        where = self.endpoint.base_url or "api.openai.com"
        try:
            return self.client.chat.completions.create(**kwargs)
        except openai.RateLimitError as exc:  # after the client's own retries
            raise RateLimited(
                f"LLM endpoint {where} is rate-limiting (HTTP 429); retry later: {exc}"
            ) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            # The server's credentials, not the caller's: a configuration problem, not UNAUTHENTICATED.
            raise ConfigError(
                f"LLM endpoint {where} refused this service's API key (HTTP {exc.status_code}); check "
                "llm.<role>.api_key or OPENAI_API_KEY"
            ) from exc
        except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError) as exc:
            raise Unavailable(f"LLM endpoint {where} is unavailable: {exc}") from exc
        except openai.NotFoundError as exc:
            raise NotFound("model", f"endpoint does not serve model {kwargs.get('model')!r}: {exc}") from exc
        except openai.BadRequestError as exc:
            raise InvalidInput("messages", f"endpoint rejected the request: {exc}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500:
                raise Unavailable(f"LLM endpoint {where} failed (HTTP {exc.status_code}): {exc}") from exc
            raise

    @staticmethod
    def _params(params: GenerationParams) -> dict[str, Any]:
        out: dict[str, Any] = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            out["seed"] = params.seed
        if params.stop:
            out["stop"] = list(params.stop)
        return out

    def chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Completion:
        params = params or GenerationParams(
            max_tokens=self.endpoint.max_tokens, temperature=self.endpoint.temperature
        )
        resp = self._call(model=self._model_for(adapter), messages=list(messages), **self._params(params))
        choice = resp.choices[0]
        usage = resp.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        self.usage.add(prompt_tokens, completion_tokens)
        return Completion(
            (choice.message.content or "").strip(),
            prompt_tokens,
            completion_tokens,
            resp.model or self.endpoint.model,
            adapter,
            choice.finish_reason or "stop",
        )

    def chat_batch(
        self,
        conversations: Sequence[Conversation],
        params: GenerationParams | None = None,
        adapters: Sequence[str | None] | str | None = None,
    ) -> list[Completion]:
        names = resolve_adapters(adapters, len(conversations))
        futures = [
            self._pool.submit(self.chat, c, params, a) for c, a in zip(conversations, names, strict=True)
        ]
        return [f.result() for f in futures]

    def stream_chat(
        self, messages: Conversation, params: GenerationParams | None = None, adapter: str | None = None
    ) -> Iterator[StreamEvent]:
        params = params or GenerationParams(
            max_tokens=self.endpoint.max_tokens, temperature=self.endpoint.temperature
        )
        stream = self._call(
            model=self._model_for(adapter),
            messages=list(messages),
            stream=True,
            stream_options={"include_usage": True},
            **self._params(params),
        )
        text, prompt_tokens, completion_tokens, model = "", 0, 0, self.endpoint.model
        try:
            for chunk in stream:
                if chunk.usage:
                    prompt_tokens, completion_tokens = (
                        chunk.usage.prompt_tokens,
                        chunk.usage.completion_tokens,
                    )
                model = chunk.model or model
                for c in chunk.choices or []:
                    piece = c.delta.content or ""
                    if piece:
                        text += piece
                        yield StreamEvent(delta=piece)
        except openai.APIError as exc:
            raise Unavailable(f"stream from LLM endpoint broke off: {exc}") from exc
        self.usage.add(prompt_tokens, completion_tokens)
        yield StreamEvent(final=Completion(text.strip(), prompt_tokens, completion_tokens, model, adapter))

    def score_choices(
        self, messages: Conversation, choices: Sequence[str], adapter: str | None = None, prefill: str = ""
    ) -> ChoiceScores:
        msgs = list(messages)
        if prefill:
            # Chat endpoints cannot continue a partial assistant turn portably; state the answer format instead.
            msgs[-1] = {**msgs[-1], "content": msgs[-1]["content"] + f"\nStart your answer with: {prefill}"}
        if self.endpoint.logprobs:
            resp = self._call(
                model=self._model_for(adapter),
                messages=msgs,
                max_tokens=1,
                temperature=0.0,
                logprobs=True,
                top_logprobs=_TOP_LOGPROBS,
            )
            prompt_tokens = resp.usage.prompt_tokens if resp.usage else 0
            self.usage.add(prompt_tokens, 1)
            content = resp.choices[0].logprobs.content if resp.choices[0].logprobs else None
            if content:
                scores = first_token_scores(
                    choices, [(t.token, t.logprob) for t in content[0].top_logprobs], prompt_tokens
                )
                if scores is not None:
                    return scores
        resp = self._call(model=self._model_for(adapter), messages=msgs, max_tokens=16, temperature=0.0)
        text = resp.choices[0].message.content or ""
        prompt_tokens = resp.usage.prompt_tokens if resp.usage else 0
        self.usage.add(prompt_tokens, resp.usage.completion_tokens if resp.usage else 0)
        found = parse_choice(text, choices)
        if found is None:
            return ChoiceScores.unusable(choices, text, prompt_tokens)
        return ChoiceScores(
            tuple(choices),
            tuple(1.0 if c == found else 0.0 for c in choices),
            "parsed",
            prompt_tokens,
            True,
            text,
        )

    # ------------------------------------------------------------- adapters
    def _server_root(self) -> str:
        if not self.endpoint.base_url:
            raise ConfigError("loading adapters needs llm.<role>.base_url pointing at a vLLM server")
        return self.endpoint.base_url.rstrip("/")

    def load_adapter(self, name: str, path: str) -> None:
        url = f"{self._server_root()}/load_lora_adapter"
        status, text = _post_json(
            url, {"lora_name": name, "lora_path": path}, self._auth_headers(), self.endpoint.timeout_s
        )
        if status >= 400 and "already been loaded" not in text:
            if status < 500:
                # The server looked at the adapter and said no (bad path, rank too high): retrying won't help.
                raise InvalidInput("adapter", f"{url} refused adapter {name!r}: HTTP {status} {text[:200]}")
            raise Unavailable(f"{url} refused adapter {name!r}: HTTP {status} {text[:200]}")
        self._adapters.add(name)
        log.info("adapter_loaded", adapter=name, path=path, endpoint=self.endpoint.base_url)

    def unload_adapter(self, name: str) -> None:
        url = f"{self._server_root()}/unload_lora_adapter"
        status, text = _post_json(url, {"lora_name": name}, self._auth_headers(), self.endpoint.timeout_s)
        if status >= 400:
            raise NotFound("adapter", f"{url}: HTTP {status} {text[:200]}")
        self._adapters.discard(name)

    def _auth_headers(self) -> dict[str, str]:
        key = self.endpoint.resolved_api_key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def served_models(self) -> list[str]:
        try:
            return [m.id for m in self.client.models.list()]
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise Unavailable(f"LLM endpoint is unavailable: {exc}") from exc


def first_token_scores(
    choices: Sequence[str], top: Sequence[tuple[str, float]], prompt_tokens: int = 0
) -> ChoiceScores | None:
    """Probabilities of ``choices`` from a first-token top-k list, or None when no choice is covered.

    A token counts for a choice when the choice starts with it (ignoring case and surrounding spaces) and it
    is not a prefix of any other choice, so "1"/"2" or "support"/"oppose"/"neutral" resolve cleanly.
    """
    mass = [0.0] * len(choices)
    lowered = [c.strip().lower() for c in choices]
    for token, logprob in top:
        t = token.strip().lower()
        if not t:
            continue
        owners = [i for i, c in enumerate(lowered) if c.startswith(t)]
        if len(owners) == 1:
            mass[owners[0]] += math.exp(logprob)
    total = sum(mass)
    if total <= 0:
        return None
    return ChoiceScores(tuple(choices), tuple(m / total for m in mass), "logprobs", prompt_tokens)


def _post_json(url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> tuple[int, str]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise Unavailable(f"cannot reach {url}: {exc}") from exc


def wait_until_ready(base_url: str, timeout_s: float = 60.0) -> None:
    """Block until ``GET {base_url}/models`` answers (a server that is still loading its model)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url.rstrip('/')}/models", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.25)
    raise Unavailable(f"LLM endpoint {base_url} not ready after {timeout_s:.0f}s: {last}")
