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
