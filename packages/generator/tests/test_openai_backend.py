"""The generator on the openai backend against a real OpenAI-compatible server process (`gravity serve llm`,
vLLM's API): adapters selected by model name, loaded at run time through /v1/load_lora_adapter, and a
backend outage answered with UNAVAILABLE while the service stays up and recovers (re-loading the adapters
the restarted server forgot)."""

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest

from gravity_core.broker import free_port
from gravity_core.clients import GeneratorCallError, GeneratorClient, Sampling
from gravity_core.grpc import make_channel, wait_for_serving
from gravity_core.grpc.client import health_status
from gravity_core.llm.openai_backend import wait_until_ready
from gravity_core.names import method_name
from gravity_generator.service import start_generator

pytestmark = pytest.mark.model


class LLMServer:
    """`gravity serve llm` in a subprocess on a fixed port, so it can be stopped and started again."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        env = {
            **os.environ,
            "GRAVITY_LLM_SERVER__PORT": str(self.port),
            "GRAVITY_LLM_SERVER__SERVED_MODEL_NAME": "smol",
        }
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gravity_core.cli.main", "serve", "llm"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until_ready(self.base_url, timeout_s=300)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def models(self) -> list[str]:
        with urllib.request.urlopen(f"{self.base_url}/models", timeout=10) as resp:
            return [m["id"] for m in json.load(resp)["data"]]


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory):
    server = LLMServer(tmp_path_factory.mktemp("llm-server") / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_adapters_by_model_name_runtime_loading_and_outage_recovery(
    llm_server: LLMServer,
    generator_settings,
    trained_adapters: dict[str, Path],
    make_adapter_ref,
    profiles,
    tmp_path: Path,
) -> None:
    settings = generator_settings(
        **{
            "llm.defaults.backend": "openai",
            "llm.defaults.base_url": llm_server.base_url,
            "llm.defaults.model": "smol",
            "llm.defaults.max_retries": 0,
            "llm.defaults.timeout_s": 120,
            "generator.adapters_dir": str(trained_adapters["gravity"].parent),
        }
    )
    running = start_generator(settings)
    channel = make_channel(running.target)
    try:
        wait_for_serving(channel, timeout_s=300)
        client = GeneratorClient(running.target, timeout_s=300)
        methods = {method_name(m): m for m in client.list_methods()}
        assert all(methods[m].available for m in ("user-sft", "pref-align", "gravity"))
        # loaded into the server at start-up, each under its own model name
        assert {"gravity-test", "user-sft-test", "pref-align-test"} <= set(llm_server.models())

        user = profiles[0].user_id
        book = {"title": "Tide", "description": "A lighthouse keeper counts ships through a long winter."}
        reply = client.personalize(user_id=user, method="gravity", **book)
        assert (
            reply.adapter == "gravity-test"
            and reply.model == "smol"
            and reply.text
            and reply.completion_tokens > 0
        )
        assert client.personalize(user_id=user, method="base-rewrite", **book).adapter == ""

        # hot-load a new adapter for the method through the server's runtime endpoint
        v2 = running.service.app.registry.store.path("adapters/gravity-v2")
        shutil.copytree(trained_adapters["pref-align"], v2)
        running.service.app.registry.install(make_adapter_ref(v2, "gravity", "gravity-v2"))
        assert "gravity-v2" in llm_server.models()
        assert client.personalize(user_id=user, method="gravity", **book).adapter == "gravity-v2"

        events = list(
            client.stream(user_id=user, method="gravity", sampling=Sampling(max_new_tokens=10), **book)
        )
        assert all(isinstance(e, str) for e in events[:-1]) and events[-1].adapter == "gravity-v2"
        assert "".join(events[:-1]).strip() == events[-1].text

        # the backend goes down: UNAVAILABLE, the generator itself stays up
        llm_server.stop()
        with pytest.raises(GeneratorCallError) as err:
            # the client retries UNAVAILABLE until its deadline (a restarting server); 10 s, not the 300 s default
            client.personalize(user_id=user, method="base-rewrite", timeout_s=10, **book)
        assert err.value.code == grpc.StatusCode.UNAVAILABLE
        assert health_status(channel) == "SERVING"
        assert client.personalize(user_id=user, method="original", **book).text == book["description"]

        # ...and comes back without the adapters it had: the generator re-loads the one it needs
        llm_server.start()
        assert "gravity-v2" not in llm_server.models()
        assert client.personalize(user_id=user, method="gravity", **book).adapter == "gravity-v2"
        assert "gravity-v2" in llm_server.models()
        client.close()
    finally:
        running.stop()


@pytest.mark.slow
def test_bench_runs_the_identical_workload_against_a_peer(llm_server: LLMServer) -> None:
    """`gravity bench generator --peer URL`: ours and the peer on the same prompts, with and without an
    adapter, and the generator over the peer, each side twice in alternating order; every run produced
    tokens and the pooled ratios are printed with each round's own."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gravity_core.cli.main",
            "bench",
            "generator",
            "--peer",
            llm_server.base_url,
            "--requests",
            "2",
            "--clients",
            "2",
            "--max-new-tokens",
            "4",
            "--rounds",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    runs, ratios = out.stdout.split("tokens/s ratios")
    for mode in ("embedded, demo-based", "embedded, gravity + LoRA", "generator -> peer, demo-based"):
        assert f"{mode} #1" in runs and f"{mode} #2" in runs
    # the direct peer runs of workloads 1 and 3
    assert sum(line.strip().startswith("peer, demo-based #2") for line in runs.splitlines()) == 2
    # the peer went first in round 2: its run starts before ours on stderr
    assert out.stderr.index("peer, demo-based #2: 2 requests") < out.stderr.index(
        "embedded, demo-based #2: 2"
    )
    rows = {
        cells[0]: cells[1:]
        for line in ratios.splitlines()
        if line.startswith("  ") and (cells := [c.strip() for c in line.strip().split("  ") if c.strip()])
    }
    assert {"base model (demo-based)", "LoRA adapter (gravity)", "generator over the peer (gRPC)"} <= set(
        rows
    )
    for what in ("base model (demo-based)", "LoRA adapter (gravity)", "generator over the peer (gRPC)"):
        ours, peer, ratio, per_round = rows[what]
        assert float(ours) > 0 and float(peer) > 0
        assert ratio.endswith("x") and float(ratio[:-1]) > 0
        assert len(per_round.split(" / ")) == 2
    # the dev server exports no vLLM request-latency metric: the bench says so instead of guessing
    assert "time per request beyond the peer's own: not measured" in out.stdout
    assert "gravity-bench" in llm_server.models()  # the adapter was loaded into the peer by name
