"""The gpu overlay's transport security, end to end on loopback: a gRPC server configured from the overlay's
ConfigMap and a Deployment's environment (TLS files and the CA remapped to certificates minted here, the
token Secret replaced by a test value) is reached by a client process set up like a pod (its
GRPC_DEFAULT_SSL_ROOTS_FILE_PATH trusts the CA, the token comes from [grpc]), refuses calls without the
token, and still answers the kubelet's plain-HTTP probe on the ops port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from gravity_testing import REPO

from gravity_core.config import load_settings
from gravity_core.grpc.server import ServiceHost

TOKEN = "test-token-0123456789"

# Runs in a fresh interpreter: gRPC reads GRPC_DEFAULT_SSL_ROOTS_FILE_PATH once per process.
CLIENT = """
import json, sys
import grpc
from gravity_core.config import GrpcSettings
from gravity_core.grpc.client import health_status, make_channel

target, health_target, settings_json = sys.argv[1:4]
settings = GrpcSettings.model_validate_json(settings_json)
out = {"tls_with_token": health_status(make_channel(target, settings))}
anonymous = settings.model_copy(update={"auth_token": None})
out["health_without_token"] = health_status(make_channel(target, anonymous))
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
for name, s in (("reflection_without_token", anonymous), ("reflection_with_token", settings)):
    try:
        responses = reflection_pb2_grpc.ServerReflectionStub(make_channel(target, s)).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        out[name] = sorted(x.name for r in responses for x in r.list_services_response.service)
    except grpc.RpcError as exc:
        out[name] = exc.code().name
out["plaintext_on_tls_port"] = health_status(grpc.insecure_channel(target))
import urllib.request
with urllib.request.urlopen(f"http://{health_target}/livez", timeout=5) as r:
    out["kubelet_probe"] = r.status
print(json.dumps(out))
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def minted(tmp_path: Path) -> Path:
    """A CA and a certificate for localhost, like cert-manager's gravity-grpc-tls Secret."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not found: cannot mint test certificates")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=gravity-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=tmp_path)  # fmt: skip
    (tmp_path / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", "tls.key", "-out", "tls.csr", cwd=tmp_path)  # fmt: skip
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "1", "-extfile", "ext.cnf", "-out", "tls.crt", cwd=tmp_path)  # fmt: skip
    return tmp_path


@pytest.fixture(scope="module")
def gpu_manifests() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render deploy/overlays/gpu")
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "overlays" / "gpu")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_gpu_overlay_tls_and_token_auth(gpu_manifests, minted: Path, tmp_path: Path) -> None:
    configmap = next(
        d
        for d in gpu_manifests
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("gravity-config")
    )
    deployment = next(
        d for d in gpu_manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == "generator"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    tls_dir = mounts["grpc-tls"]

    def remap(path: str) -> str:  # the Secret's mount point -> the minted files
        return str(minted / Path(path).relative_to(tls_dir))

    env = {v["name"]: v.get("value", "") for v in container["env"]}
    assert "valueFrom" in next(v for v in container["env"] if v["name"] == "GRAVITY_GRPC__AUTH_TOKEN")
    config = tmp_path / "gravity.toml"
    config.write_text(configmap["data"]["gravity.toml"], encoding="utf-8")
    settings = load_settings(config, env={"GRAVITY_GRPC__AUTH_TOKEN": TOKEN})
    grpc_settings = settings.grpc.model_copy(
        update={
            "host": "127.0.0.1",
            "health_port": 0,
            "tls_cert": remap(settings.grpc.tls_cert or ""),
            "tls_key": remap(settings.grpc.tls_key or ""),
        }
    )
    assert settings.grpc.tls_ca is None, "server-side TLS only: clients need no certificate"

    host = ServiceHost("generator", grpc_settings, port=0)
    port = host.start(ready=True)
    try:
        client_env = {
            **os.environ,
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": remap(env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"]),
        }
        client_settings = grpc_settings.model_dump(mode="json") | {"auth_token": TOKEN}
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CLIENT,
                f"localhost:{port}",
                f"127.0.0.1:{host.health_bound_port}",
                json.dumps(client_settings),
            ],
            env=client_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        host.stop(0)
    assert seen["tls_with_token"] == "SERVING"
    assert seen["health_without_token"] == "SERVING", "health stays open for probes"
    assert seen["reflection_without_token"] == "UNAUTHENTICATED"
    assert "grpc.health.v1.Health" in seen["reflection_with_token"]
    assert seen["plaintext_on_tls_port"] != "SERVING"
    assert seen["kubelet_probe"] == 200, "the kubelet's plain-HTTP probe answers beside the TLS port"


def test_gpu_overlay_generator_http_is_https_with_the_grpc_token(
    gpu_manifests, minted: Path, tmp_path: Path
) -> None:
    """The generator's HTTP port (OpenAI-compatible API, compare page) takes gRPC's TLS files and token."""
    import httpx

    from gravity_generator.service import start_generator

    configmap = next(
        d
        for d in gpu_manifests
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("gravity-config")
    )
    config = tmp_path / "gravity.toml"
    config.write_text(configmap["data"]["gravity.toml"], encoding="utf-8")
    deployed = load_settings(config, env={})
    tls_dir = Path(deployed.grpc.tls_cert or "").parent
    settings = load_settings(
        config,
        env={"GRAVITY_GRPC__AUTH_TOKEN": TOKEN},
        overrides={
            "grpc.host": "127.0.0.1",
            "grpc.health_port": 0,
            "grpc.tls_cert": str(minted / Path(deployed.grpc.tls_cert or "").relative_to(tls_dir)),
            "grpc.tls_key": str(minted / Path(deployed.grpc.tls_key or "").relative_to(tls_dir)),
            # no cluster here: no topics, and a catalog that is not there makes loading fail at once
            "generator.follow_topics": False,
            "generator.meta_path": str(tmp_path / "no-catalog.jsonl"),
        },
    )
    running = start_generator(settings, port=0, http_port=0)
    try:
        http = running.service.http
        assert http is not None and http.tls and http.url.startswith("https://")
        base = f"https://localhost:{http.port}"
        with httpx.Client(verify=str(minted / "ca.crt"), timeout=30) as client:
            assert client.get(f"{base}/healthz").status_code == 503  # loading failed: no catalog
            anonymous = client.get(f"{base}/v1/models")
            assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
            with_token = client.get(f"{base}/v1/models", headers={"authorization": f"Bearer {TOKEN}"})
            assert with_token.status_code == 503, "past auth: the model is not loaded"
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{http.port}/healthz", timeout=10)
    finally:
        running.stop(0.5)
