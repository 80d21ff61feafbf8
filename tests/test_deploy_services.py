"""Each service boots the way its pod does: the image's entry point (`gravity serve <service>`) with the
local overlay's rendered ConfigMap as GRAVITY_CONFIG and the Deployment's own environment, against a real
broker. The kubelet's view is checked: the plaintext health port answers the startup/liveness probe
(`liveness`) and the readiness probe (""), and SIGTERM ends the process cleanly within the pod's
termination grace period. Only cluster addresses are replaced (broker, loopback ports, a temp artifact
volume, per-test topic names)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from gravity_testing import REPO

from gravity_core.config import load_settings
from gravity_core.grpc.client import health_status
from gravity_core.grpc.server import LIVENESS_SERVICE
from gravity_core.registry import service_names

STARTUP_TIMEOUT_S = 240.0

pytestmark = [pytest.mark.broker, pytest.mark.model]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_manifests() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render deploy/overlays/local")
    out = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "overlays" / "local")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _deployment(manifests: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for d in manifests if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def _pod_env(container: dict[str, Any], pod_name: str) -> dict[str, str]:
    """What the kubelet would set: literal values and field refs; the local overlay's secrets are optional
    and absent."""
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif "fieldRef" in var.get("valueFrom", {}):
            env[var["name"]] = pod_name
    return env


def _create_topics(bootstrap: str, topics: dict[str, str]) -> None:
    """Stand in for Strimzi's topic operator (the services run with create_topics = false)."""
    from gravity_core.bus import Bus

    settings = load_settings(
        None,
        env={},
        overrides={"kafka.bootstrap_servers": bootstrap, "kafka.create_topics": True, "kafka.partitions": 1}
        | {f"kafka.topics.{k}": v for k, v in topics.items()},
    )
    bus = Bus(settings.kafka, "deploy-test")
    try:
        bus.ensure_topics()
    finally:
        bus.close()


@pytest.mark.parametrize("service", service_names())
def test_service_pod_is_live_and_stops_on_sigterm(service, local_manifests, broker, tmp_path) -> None:
    _boot_probe_stop(service, local_manifests, broker, tmp_path, wait_ready=False)


@pytest.mark.slow
@pytest.mark.parametrize("service", service_names())
def test_service_pod_becomes_ready(service, local_manifests, broker, tmp_path) -> None:
    # Readiness needs the service's models loaded and its consumer group joined: tens of seconds each.
    _boot_probe_stop(service, local_manifests, broker, tmp_path, wait_ready=True)


def _boot_probe_stop(
    service: str, local_manifests: list[dict[str, Any]], broker: Any, tmp_path: Path, wait_ready: bool
) -> None:
    ep = {e.name: e for e in entry_points(group="gravity.services")}[service]
    try:
        ep.load()
    except ImportError as exc:
        pytest.skip(f"gravity-{service} is not written yet ({ep.value}: {exc})")

    deployment = _deployment(local_manifests, service)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    configmap = next(
        d
        for d in local_manifests
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("gravity-config")
    )
    config = tmp_path / "gravity.toml"
    config.write_text(configmap["data"]["gravity.toml"], encoding="utf-8")

    suffix = f"deploy-{service}-{tmp_path.name[-12:]}".replace("_", "-")
    topics = {t: f"gravity.{t}.{suffix}" for t in ("profiles", "shards", "adapters", "dlq")}
    _create_topics(broker.bootstrap, topics)
    grpc_port, health_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAVITY_") or k == "GRAVITY_HOME"}
    env |= _pod_env(container, f"{service}-7d9f8-abcde")
    env |= {
        "GRAVITY_CONFIG": str(config),
        # cluster addresses -> this machine
        "GRAVITY_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap,
        "GRAVITY_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "GRAVITY_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
        "GRAVITY_KAFKA__GROUP_PREFIX": suffix,
        "GRAVITY_GRPC__HOST": "127.0.0.1",
        f"GRAVITY_GRPC__PORTS__{service.upper()}": str(grpc_port),
        "GRAVITY_GRPC__HEALTH_PORT": str(health_port),
        "GRAVITY_ARTIFACTS__ROOT": str(tmp_path / "artifacts"),
        "GRAVITY_CACHE__PATH": str(tmp_path / "llm-cache.sqlite"),
    } | {f"GRAVITY_KAFKA__TOPICS__{k.upper()}": v for k, v in topics.items()}
    http_port = _free_port()  # the generator's HTTP port (containerPort "http"); 8000 may be taken here
    if service == "generator":
        env["GRAVITY_GENERATOR__HTTP_PORT"] = str(http_port)
    gravity = Path(sys.executable).parent / "gravity"
    # the image's ENTRYPOINT
    command = [str(gravity), "serve", service]
    log_path = tmp_path / "pod.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    probe = f"http://127.0.0.1:{health_port}"
    try:
        # startupProbe / livenessProbe: GET /livez on the operations port
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        status = 0
        while time.monotonic() < deadline and proc.poll() is None:
            status = _http_status(f"{probe}/livez")
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, f"{service}: /livez {status}; exit {proc.poll()}\n{_tail(log_path)}"
        # readinessProbe: GET /readyz; with the broker up and the topics in place the pod must become
        # ready, or the rollout would never finish
        status = _http_status(f"{probe}/readyz")
        while wait_ready and status != 200 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            status = _http_status(f"{probe}/readyz")
        expected = (200,) if wait_ready else (200, 503)
        assert status in expected, f"{service}: /readyz {status}\n{_tail(log_path)}"
        # Prometheus scrapes the same port
        with urllib.request.urlopen(f"{probe}/metrics", timeout=10) as reply:
            assert (reply.status == 200 and b"gravity_queue_depth" in reply.read()) or service in (
                "pairgen",
                "judge",
            )
        # the Service's target port answers too (plaintext in the local overlay)
        assert health_status(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"), LIVENESS_SERVICE) == "SERVING"
        if service == "generator":
            # and its HTTP port: the OpenAI-compatible API (503 until the model is loaded)
            assert _http_status(f"http://127.0.0.1:{http_port}/v1/models") in expected

        # rollout / scale-down: SIGTERM, then SIGKILL after terminationGracePeriodSeconds
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=pod["terminationGracePeriodSeconds"])
        assert code == 0, f"{service} exited {code} on SIGTERM\n{_tail(log_path)}"
        # the process skips the interpreter's teardown (cli.main.exit_now), but not its last log lines
        assert "grpc_stopped" in log_path.read_text(encoding="utf-8", errors="replace"), _tail(log_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
