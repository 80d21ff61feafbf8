"""The Kubernetes manifests agree with the code: every overlay is rendered with `kubectl kustomize`, its
ConfigMap TOML plus each container's GRAVITY_* environment is loaded with gravity_core.config and validated
section by section (service sections through the ``gravity.settings`` entry points), and every Kafka topic,
gRPC port, health probe and mounted path in the manifests is compared with the loaded settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import types
import typing
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import yaml
from gravity_testing import REPO
from pydantic import BaseModel

from gravity_core.config import Settings, check_settings, load_settings
from gravity_core.registry import service_names
from gravity_generator.settings import GeneratorSettings
from gravity_trainer.settings import TrainerSettings

DEPLOY = REPO / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
STRIMZI_GROUP = "kafka.strimzi.io/"


@dataclass
class Workload:
    """One container of a Deployment or Job that runs GRAVITY code."""

    kind: str
    name: str
    pod: dict[str, Any]
    container: dict[str, Any]
    pod_metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def env(self) -> list[dict[str, Any]]:
        return self.container.get("env", [])

    def mount_of(self, path: str) -> dict[str, Any] | None:
        """The volumeMount whose mountPath contains ``path`` (the deepest one)."""
        best = None
        for mount in self.container.get("volumeMounts", []):
            root = mount["mountPath"].rstrip("/")
            if (path == root or path.startswith(root + "/")) and (
                best is None or len(root) > len(best["mountPath"])
            ):
                best = mount
        return best

    def volume(self, name: str) -> dict[str, Any]:
        return next(v for v in self.pod.get("volumes", []) if v["name"] == name)


@dataclass
class Rendered:
    overlay: str
    docs: list[dict[str, Any]]
    workloads: list[Workload] = field(default_factory=list)

    def of_kind(self, kind: str, api_prefix: str = "") -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind and d["apiVersion"].startswith(api_prefix)]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        matches = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(matches) == 1, f"{self.overlay}: expected one {kind} {name}, found {len(matches)}"
        return matches[0]

    def gravity_toml(self) -> str:
        (configmap,) = [
            d for d in self.of_kind("ConfigMap") if d["metadata"]["name"].startswith("gravity-config")
        ]
        return configmap["data"]["gravity.toml"]


def _render(overlay: str) -> Rendered:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays")
    proc = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    rendered = Rendered(overlay, docs)
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
            for container in pod["containers"]:
                if container["image"].split("/")[-1].startswith("gravity-"):
                    rendered.workloads.append(
                        Workload(
                            doc["kind"],
                            doc["metadata"]["name"],
                            pod,
                            container,
                            doc["spec"]["template"].get("metadata", {}),
                        )
                    )
    return rendered


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return _render(request.param)


def _env_values(workload: Workload) -> dict[str, str]:
    """The container's environment as the process would see it; Secret and field refs get stand-ins."""
    out = {}
    for var in workload.env:
        if "value" in var:
            out[var["name"]] = str(var["value"])
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            out[var["name"]] = f"secret:{ref['name']}/{ref['key']}"
        else:
            out[var["name"]] = f"{workload.name}-pod"
    return out


def _settings_for(rendered: Rendered, workload: Workload, tmp_path: Path) -> Settings:
    config = tmp_path / f"{rendered.overlay}-{workload.name}.toml"
    config.write_text(rendered.gravity_toml(), encoding="utf-8")
    return load_settings(config, env=_env_values(workload))


def _section_models() -> tuple[dict[str, type[BaseModel]], dict[str, str]]:
    """Every service settings model that imports, and why the others do not (packages still being written)."""
    models: dict[str, type[BaseModel]] = {}
    missing: dict[str, str] = {}
    for ep in entry_points(group="gravity.settings"):
        try:
            models[ep.name] = ep.load()
        except ImportError as exc:
            missing[ep.name] = f"{ep.value}: {exc}"
    return models, missing


def _undeclared_keys(data: dict[str, Any], model: type[BaseModel], prefix: str) -> list[str]:
    """Dotted keys in ``data`` that ``model`` does not declare (independent of the model's extra policy)."""
    out = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            out.append(f"{prefix}{key}")
            continue
        nested = _model_in(info.annotation)
        if nested is not None and isinstance(value, dict):
            out.extend(_undeclared_keys(value, nested, f"{prefix}{key}."))
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X`` or ``X | None``, if any (dict-valued fields take any key)."""
    candidates = (
        typing.get_args(annotation)
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else (annotation,)
    )
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _gravity_env_tree(workload: Workload) -> dict[str, Any]:
    from gravity_core.config import env_overrides

    return env_overrides({k: v for k, v in _env_values(workload).items() if k.startswith("GRAVITY_")})


# ------------------------------------------------------------------------------------------- configuration


def test_every_overlay_has_gravity_workloads(rendered: Rendered) -> None:
    names = {w.name for w in rendered.workloads}
    assert names >= {"profiler", "pairgen", "generator", "judge"}, names
    assert any(w.name.startswith("trainer") for w in rendered.workloads), names


def test_configmap_and_environment_load_into_valid_settings(rendered: Rendered, tmp_path: Path) -> None:
    import tomllib

    models, missing = _section_models()
    file_tree = tomllib.loads(rendered.gravity_toml())
    unverifiable: set[str] = set()
    for workload in rendered.workloads:
        settings = _settings_for(rendered, workload, tmp_path)
        if not missing:
            check_settings(settings)  # every section, unknown sections are an error
        for name, model in models.items():
            settings.section(name, model)  # raises ConfigError naming the field
        # Every key of the file and every GRAVITY_* variable names a declared setting, even in a section
        # whose model would tolerate extras.
        for source, tree in (("gravity.toml", file_tree), ("env", _gravity_env_tree(workload))):
            undeclared = []
            for section, value in tree.items():
                if section in Settings.model_fields:
                    nested = _model_in(Settings.model_fields[section].annotation)
                    assert nested is not None
                    undeclared += _undeclared_keys(value, nested, f"{section}.")
                elif section in models:
                    undeclared += _undeclared_keys(value, models[section], f"{section}.")
                elif section in missing:
                    unverifiable.add(section)
                else:
                    undeclared.append(section)
            assert not undeclared, f"{rendered.overlay}/{workload.name} {source}: unknown keys {undeclared}"
    if unverifiable:
        pytest.skip(
            f"sections {sorted(unverifiable)} not verified: their settings models do not import yet {missing}"
        )


def test_every_service_settings_model_imports() -> None:
    _, missing = _section_models()
    if missing:
        pytest.skip(f"service packages not written yet, their sections cannot be checked: {missing}")


def test_only_gravity_variables_that_the_code_reads(rendered: Rendered) -> None:
    # Outside GRAVITY_*, the containers may set only variables a library documents reading.
    allowed = {"OPENAI_API_KEY", "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", "HF_HUB_OFFLINE"}
    for workload in rendered.workloads:
        names = {v["name"] for v in workload.env}
        assert len(names) == len(workload.env), f"{workload.name}: duplicate environment variables"
        stray = {n for n in names if not n.startswith("GRAVITY_")} - allowed
        assert not stray, f"{rendered.overlay}/{workload.name}: unexpected variables {stray}"
        # GRAVITY_CONFIG/GRAVITY_HOME are the image's job; a section-less GRAVITY_X would be ignored.
        for name in names:
            if name.startswith("GRAVITY_"):
                assert "__" in name, f"{workload.name}: {name} is not GRAVITY_<SECTION>__<KEY>"


# ------------------------------------------------------------------------------------------------- Kafka


def test_topics_are_the_configured_ones(rendered: Rendered, tmp_path: Path) -> None:
    topics = rendered.of_kind("KafkaTopic", STRIMZI_GROUP)
    names = {t["spec"].get("topicName", t["metadata"]["name"]) for t in topics}
    assert names == set(Settings().kafka.topics.model_dump().values())
    for workload in rendered.workloads:
        settings = _settings_for(rendered, workload, tmp_path)
        assert set(settings.kafka.topics.model_dump().values()) == names
        assert settings.kafka.create_topics is False, "Strimzi owns the topics in Kubernetes"


def test_topic_durability_and_retention(rendered: Rendered) -> None:
    by_name = {t["metadata"]["name"]: t for t in rendered.of_kind("KafkaTopic", STRIMZI_GROUP)}
    topics = Settings().kafka.topics
    (pool,) = rendered.of_kind("KafkaNodePool", STRIMZI_GROUP)
    for topic in by_name.values():
        spec = topic["spec"]
        assert spec["replicas"] <= pool["spec"]["replicas"], topic["metadata"]["name"]
        isr = int(spec["config"]["min.insync.replicas"])
        # acks=all producers must survive one broker down whenever there is more than one replica
        assert isr == 1 if spec["replicas"] == 1 else 1 < isr < spec["replicas"], topic["metadata"]["name"]
    profiles = by_name[topics.profiles]["spec"]["config"]
    assert profiles["cleanup.policy"] == "compact" and int(profiles["retention.ms"]) == -1
    dlq = int(by_name[topics.dlq]["spec"]["config"]["retention.ms"])
    assert dlq > int(by_name[topics.shards]["spec"]["config"]["retention.ms"])


def test_strimzi_resources_belong_to_the_configured_cluster(rendered: Rendered, tmp_path: Path) -> None:
    (kafka,) = rendered.of_kind("Kafka", STRIMZI_GROUP)
    cluster = kafka["metadata"]["name"]
    for resource in rendered.of_kind("KafkaNodePool", STRIMZI_GROUP) + rendered.of_kind(
        "KafkaTopic", STRIMZI_GROUP
    ):
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert resource["metadata"].get("namespace") == kafka["metadata"].get("namespace")
    (pool,) = rendered.of_kind("KafkaNodePool", STRIMZI_GROUP)
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}  # KRaft, no ZooKeeper
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    plain = next(listener for listener in kafka["spec"]["kafka"]["listeners"] if listener["tls"] is False)
    for workload in rendered.workloads:
        settings = _settings_for(rendered, workload, tmp_path)
        assert settings.kafka.security_protocol == "PLAINTEXT"
        assert settings.kafka.bootstrap_servers == f"{cluster}-kafka-bootstrap:{plain['port']}"
        # the plaintext listener admits GRAVITY pods only (Strimzi turns this into a NetworkPolicy)
        peers = [p["podSelector"]["matchLabels"] for p in plain.get("networkPolicyPeers", [])]
        pod_labels = rendered.one(workload.kind, workload.name)["spec"]["template"]["metadata"]["labels"]
        assert any(all(pod_labels.get(k) == v for k, v in peer.items()) for peer in peers), workload.name


# -------------------------------------------------------------------------------------------------- gRPC


def test_grpc_ports_services_and_targets(rendered: Rendered, tmp_path: Path) -> None:
    defaults = Settings().grpc.ports
    deployed = [w for w in rendered.workloads if w.kind == "Deployment"]
    assert deployed
    for workload in deployed:
        settings = _settings_for(rendered, workload, tmp_path)
        assert settings.grpc.host == "0.0.0.0"
        port = settings.grpc.port(workload.name)
        assert port == defaults[workload.name], "clients' default port for the service"
        ports = {p["name"]: p["containerPort"] for p in workload.container["ports"]}
        assert ports["grpc"] == port
        service = rendered.one("Service", workload.name)
        # gRPC first: targets below name a Service's first port
        service_port = service["spec"]["ports"][0]
        assert service_port["port"] == port and service_port["targetPort"] == "grpc"
        others = {p["name"] for p in service["spec"]["ports"][1:]}
        assert others == ({"http"} if workload.name == "generator" else set()), workload.name
        selector = service["spec"]["selector"]
        pod_labels = rendered.one("Deployment", workload.name)["spec"]["template"]["metadata"]["labels"]
        assert all(pod_labels.get(k) == v for k, v in selector.items())
        # where one service reaches another: an existing Service on that service's port
        for name, target in settings.grpc.targets.items():
            host, _, target_port = target.rpartition(":")
            assert rendered.one("Service", host)["spec"]["ports"][0]["port"] == int(target_port)
            assert int(target_port) == settings.grpc.port(name)


def test_generator_http_port_is_exposed(rendered: Rendered, tmp_path: Path) -> None:
    """The OpenAI-compatible API and the compare page: [generator] http_port, a containerPort and a Service port."""
    workload = next(w for w in rendered.workloads if w.name == "generator")
    settings = _settings_for(rendered, workload, tmp_path)
    cfg = settings.section("generator", GeneratorSettings)
    assert cfg.http_enabled and cfg.http_port not in (
        0,
        settings.grpc.port("generator"),
        settings.grpc.health_port,
    )
    assert (cfg.http_host or settings.grpc.host) == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in workload.container["ports"]}
    assert ports["http"] == cfg.http_port
    service_ports = {p["name"]: p for p in rendered.one("Service", "generator")["spec"]["ports"]}
    assert service_ports["http"]["port"] == cfg.http_port and service_ports["http"]["targetPort"] == "http"


def test_probes_use_the_plaintext_health_port(rendered: Rendered, tmp_path: Path) -> None:
    for workload in (w for w in rendered.workloads if w.kind == "Deployment"):
        settings = _settings_for(rendered, workload, tmp_path)
        health_port = settings.grpc.health_port
        assert health_port is not None and health_port != settings.grpc.port(workload.name)
        ports = {p["name"]: p["containerPort"] for p in workload.container["ports"]}
        assert ports["health"] == health_port
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http_probe = workload.container[probe]["httpGet"]
            assert ports.get(http_probe["port"], http_probe["port"]) == health_port, (
                f"{workload.name} {probe}"
            )
        # liveness must not fail while only Kafka is down; readiness must
        assert workload.container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert workload.container["startupProbe"]["httpGet"]["path"] == "/livez"
        assert workload.container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        annotations = workload.pod_metadata.get("annotations", {})
        assert annotations.get("prometheus.io/port") == str(health_port), workload.name
        assert annotations.get("prometheus.io/path") == "/metrics"
        grace = workload.pod["terminationGracePeriodSeconds"]
        assert grace > settings.grpc.grace_s, "in-flight calls need grpc.grace_s before SIGKILL"


def test_tls_and_token_auth_files_are_mounted(rendered: Rendered, tmp_path: Path) -> None:
    for workload in (w for w in rendered.workloads if w.kind == "Deployment"):
        settings = _settings_for(rendered, workload, tmp_path)
        env = {v["name"]: v for v in workload.env}
        token = env["GRAVITY_GRPC__AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
        if rendered.overlay == "gpu":
            assert token.get("optional") is False, "auth is mandatory in the gpu overlay"
            assert settings.grpc.tls_cert and settings.grpc.tls_key
        paths = [p for p in (settings.grpc.tls_cert, settings.grpc.tls_key, settings.grpc.tls_ca) if p]
        if "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH" in env:
            paths.append(env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"]["value"])
        for path in paths:
            mount = workload.mount_of(path)
            assert mount is not None, f"{workload.name}: {path} is not mounted"
            secret = workload.volume(mount["name"])["secret"]
            assert Path(path).relative_to(mount["mountPath"]).as_posix() in ("tls.crt", "tls.key", "ca.crt")
            assert secret["secretName"]


# -------------------------------------------------------------------------------------- volumes and images


def test_config_and_artifacts_are_mounted_where_the_code_looks(rendered: Rendered, tmp_path: Path) -> None:
    image_env = _dockerfile_env()
    config_path = image_env["GRAVITY_CONFIG"]
    for workload in rendered.workloads:
        mount = workload.mount_of(config_path)
        assert mount is not None, f"{workload.name}: {config_path} not mounted"
        configmap = workload.volume(mount["name"])["configMap"]["name"]
        assert configmap.startswith("gravity-config")
        assert Path(config_path).name == "gravity.toml"
        settings = _settings_for(rendered, workload, tmp_path)
        artifacts = workload.mount_of(settings.artifacts.root)
        assert artifacts is not None and artifacts["mountPath"] == settings.artifacts.root
        claim = workload.volume(artifacts["name"])["persistentVolumeClaim"]["claimName"]
        assert claim == "gravity-artifacts" and not artifacts.get("readOnly")
        # GRAVITY_HOME (model conversion, response cache) must be writable: the root filesystem is not
        home = workload.mount_of(image_env["GRAVITY_HOME"])
        assert home is not None and "emptyDir" in workload.volume(home["name"])
    pvc = rendered.one("PersistentVolumeClaim", "gravity-artifacts")
    if rendered.overlay == "gpu":
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_images_come_from_dockerfile_targets(rendered: Rendered) -> None:
    targets = _dockerfile_targets()
    services = {ep.name for ep in entry_points(group="gravity.services")} & set(service_names())
    assert set(targets) == set(service_names()) and services == set(service_names())
    base = _base_settings()
    for service, (entrypoint, exposed) in targets.items():
        assert entrypoint == ["gravity", "serve", service]
        http = {_generator_http_port(base)} if service == "generator" else set()
        assert exposed == {Settings().grpc.ports[service], base.grpc.health_port, *http}
    for workload in rendered.workloads:
        repository = workload.container["image"].rsplit(":", 1)[0].split("/")[-1]
        assert repository.removeprefix("gravity-").removesuffix("-cuda") in targets, repository
        assert workload.pod["securityContext"]["runAsNonRoot"] is True


# ---------------------------------------------------------------------------------------- the gpu overlay


@pytest.fixture(scope="module")
def gpu() -> Rendered:
    if "gpu" not in OVERLAYS:
        pytest.fail("deploy/overlays/gpu is missing")
    return _render("gpu")


def test_generator_writer_is_the_vllm_service(gpu: Rendered, tmp_path: Path) -> None:
    generator = next(w for w in gpu.workloads if w.name == "generator")
    writer = _settings_for(gpu, generator, tmp_path).llm.role("writer")
    assert writer.backend == "openai"
    match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/v1", writer.base_url or "")
    assert match, writer.base_url
    service = gpu.one("Service", match.group(1))
    assert service["spec"]["ports"][0]["port"] == int(match.group(2))
    (vllm,) = gpu.one("Deployment", match.group(1))["spec"]["template"]["spec"]["containers"]
    args = vllm["args"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert f"--served-model-name={writer.model}" in args
    assert "--enable-lora" in args and any(a.startswith("--max-loras=") for a in args)
    assert any(a.startswith("--max-lora-rank=") for a in args)
    env = {v["name"]: v for v in vllm["env"]}
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"]["value"] == "True"
    # the generator authenticates with the key vLLM enforces
    generator_env = {v["name"]: v for v in generator.env}
    assert (
        generator_env["GRAVITY_LLM__WRITER__API_KEY"]["valueFrom"]["secretKeyRef"]
        == env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    )
    # adapters are loaded by path: vLLM sees the artifact volume at the same path, read-only
    root = _settings_for(gpu, generator, tmp_path).artifacts.root
    mount = next(m for m in vllm["volumeMounts"] if m["mountPath"] == root)
    pod = gpu.one("Deployment", match.group(1))["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"]["claimName"] == "gravity-artifacts" and mount["readOnly"]


def test_generator_and_judge_autoscale(gpu: Rendered) -> None:
    for name in ("generator", "judge"):
        (hpa,) = [h for h in gpu.of_kind("HorizontalPodAutoscaler") if h["metadata"]["name"] == name]
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in gpu.one("Deployment", name)["spec"], "the HPA owns the replica count"
        container = gpu.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"]["cpu"], "CPU utilization needs a CPU request"


def test_gpu_trainer_service_consumes_shards_and_trains_the_paper_recipe_on_gpus(
    gpu: Rendered, tmp_path: Path
) -> None:
    """Something consumes gravity.shards.v1 in the gpu overlay: the trainer service, on GPUs, with the paper
    config and one accelerate process per GPU; the Job remains for one-off runs, with the same config."""
    deployment = gpu.one("Deployment", "trainer")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith("-cuda")
    gpus = int(container["resources"]["limits"]["nvidia.com/gpu"])
    workload = next(w for w in gpu.workloads if (w.kind, w.name) == ("Deployment", "trainer"))
    settings = _settings_for(gpu, workload, tmp_path)
    section = settings.section("trainer", TrainerSettings)
    launcher = section.launcher
    assert launcher[:2] == ["accelerate", "launch"] and launcher[-2:] == ["-m", "gravity_trainer.launch"]
    assert f"--num_processes={gpus}" in launcher, "one process per requested GPU"
    assert section.recipe_for("gravity") == "gravity-dpo", "complete gravity datasets are trained"
    assert _shipped(section.recipe_config).name == "paper-gpu.toml"
    assert _shipped(next(a.split("=", 1)[1] for a in launcher if a.startswith("--config_file="))).is_file()
    assert gpu.one("Service", "trainer")["spec"]["ports"][0]["port"] == settings.grpc.port("trainer")

    (job,) = gpu.of_kind("Job")
    (job_container,) = job["spec"]["template"]["spec"]["containers"]
    command, args = job_container["command"], job_container["args"]
    assert command[:2] == ["accelerate", "launch"] and job_container["image"].endswith("-cuda")
    assert f"--num_processes={job_container['resources']['limits']['nvidia.com/gpu']}" in command
    recipe_config = next(a.split("=", 1)[1] for a in args if a.startswith("--recipe-config="))
    assert recipe_config == section.recipe_config, "the Job trains with the same paper config"


def _shipped(path_in_image: str) -> Path:
    """The repository file an /app/... path in an image comes from (it must exist)."""
    shipped = REPO / path_in_image.removeprefix("/app/")
    assert shipped.is_file(), f"{path_in_image} is not shipped in the image"
    return shipped


# ------------------------------------------------------------------------------------------------ helpers


def _base_settings() -> Settings:
    return load_settings(DEPLOY / "base" / "gravity.toml", env={})


def _generator_http_port(settings: Settings) -> int:
    return settings.section("generator", GeneratorSettings).http_port


def _dockerfile_lines() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in _dockerfile_lines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def _dockerfile_targets() -> dict[str, tuple[list[str], set[int]]]:
    """Final stages built FROM runtime: target -> (ENTRYPOINT, EXPOSEd ports)."""
    import json

    targets: dict[str, tuple[list[str], set[int]]] = {}
    current = None
    for line in _dockerfile_lines():
        stage = re.fullmatch(r"FROM runtime AS (\S+)", line)
        if line.startswith("FROM "):
            current = stage.group(1) if stage else None
            if current:
                targets[current] = ([], set())
        elif current and line.startswith("ENTRYPOINT "):
            targets[current] = (json.loads(line.removeprefix("ENTRYPOINT ")), targets[current][1])
        elif current and line.startswith("EXPOSE "):
            targets[current][1].update(int(p) for p in line.split()[1:])
    return targets
