"""The OpenAI backend against a real OpenAI-compatible server process (`gravity serve llm`) on 127.0.0.1."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gravity_core.broker import free_port
from gravity_core.config import LLMEndpoint
from gravity_core.errors import NotFound
from gravity_core.llm import GenerationParams
from gravity_core.llm.openai_backend import OpenAILLM, first_token_scores, wait_until_ready

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    env = {
        **os.environ,
        "GRAVITY_LLM_SERVER__PORT": str(port),
        "GRAVITY_LLM_SERVER__SERVED_MODEL_NAME": "smol",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gravity_core.cli.main", "serve", "llm"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ready(base_url, timeout_s=180)
        yield base_url
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode is not None


def test_chat_stream_and_logprob_scoring(llm_server: str) -> None:
    llm = OpenAILLM(LLMEndpoint(backend="openai", model="smol", base_url=llm_server))
    c = llm.chat([{"role": "user", "content": "Name one colour."}], GenerationParams(max_tokens=12))
    assert c.text and c.prompt_tokens > 0 and c.completion_tokens > 0
    events = list(llm.stream_chat([{"role": "user", "content": "Say hi."}], GenerationParams(max_tokens=8)))
    assert (
        events[-1].final is not None
        and "".join(e.delta for e in events[:-1]).strip() == events[-1].final.text
    )
    scores = llm.score_choices(
        [{"role": "user", "content": "Is water wet? Answer yes or no."}], ["yes", "no"]
    )
    assert scores.usable and scores.method == "logprobs" and abs(sum(scores.probabilities) - 1) < 1e-6
    batch = llm.chat_batch(
        [[{"role": "user", "content": "One word: sky."}]] * 3, GenerationParams(max_tokens=4)
    )
    assert len(batch) == 3 and len({b.text for b in batch}) == 1
    assert "smol" in llm.served_models()


def test_adapter_by_model_name_and_runtime_loading(llm_server: str, tiny_adapter: Path) -> None:
    llm = OpenAILLM(LLMEndpoint(backend="openai", model="smol", base_url=llm_server))
    with pytest.raises(NotFound):
        llm.chat([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=4), adapter="tiny")
    llm.load_adapter("tiny", str(tiny_adapter))
    assert "tiny" in llm.served_models()
    out = llm.chat([{"role": "user", "content": "hi"}], GenerationParams(max_tokens=4), adapter="tiny")
    assert out.model == "tiny"
    llm.unload_adapter("tiny")
    assert "tiny" not in llm.served_models()


def test_parse_fallback_without_logprobs(llm_server: str) -> None:
    llm = OpenAILLM(LLMEndpoint(backend="openai", model="smol", base_url=llm_server, logprobs=False))
    s = llm.score_choices([{"role": "user", "content": "Reply with exactly the word yes."}], ["yes", "no"])
    assert s.method == "parsed"
    assert (s.usable and s.best in ("yes", "no")) or (not s.usable and s.raw_text is not None)


def test_first_token_scores_resolves_prefixes() -> None:
    s = first_token_scores(
        ["support", "oppose", "neutral"], [(" support", -0.1), ("opp", -2.0), ("Ne", -3.0), ("x", -0.5)]
    )
    assert s is not None and s.best == "support" and s.probabilities[1] > s.probabilities[2]
    # "no" is a prefix of both "no" and "no support": ambiguous tokens are ignored
    assert first_token_scores(["no", "no support"], [("no", -0.1)]) is None


def test_the_openai_key_goes_only_to_openai_or_where_a_role_names_its_own(monkeypatch) -> None:
    """A vLLM or proxy host must never receive the OPENAI_API_KEY meant for api.openai.com."""
    import json
    from http.server import BaseHTTPRequestHandler

    from gravity_testing import http_server, send_body

    seen: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "ok"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            ).encode()
            send_body(self, 200, body)

        def log_message(self, *_: object) -> None:
            pass

    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-only-0001")
    with http_server(Recorder) as root:
        base_url = f"{root}/v1"
        OpenAILLM(LLMEndpoint(backend="openai", model="m", base_url=base_url)).chat(
            [{"role": "user", "content": "hi"}]
        )
        own = LLMEndpoint(backend="openai", model="m", base_url=base_url, api_key="vllm-own-key")
        OpenAILLM(own).chat([{"role": "user", "content": "hi"}])
    assert seen == ["Bearer EMPTY", "Bearer vllm-own-key"]
    assert LLMEndpoint(backend="openai", model="gpt-4o").resolved_api_key() == "sk-openai-only-0001"
    assert (
        LLMEndpoint(backend="openai", base_url="https://api.openai.com/v1").resolved_api_key()
        == "sk-openai-only-0001"
    )
