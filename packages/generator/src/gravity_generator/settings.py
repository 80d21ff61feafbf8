"""The ``[generator]`` configuration section (env: ``GRAVITY_GENERATOR__<KEY>``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gravity_core.logging import get_logger

log = get_logger(__name__)


class GeneratorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Catalog metadata (Amazon meta_Books.jsonl[.gz]); empty = the bundled sample catalog.
    meta_path: str = ""
    # Profiles loaded at start (profiles.jsonl of gravity.v1.UserProfile); optional.
    profiles_path: str = ""
    # Adapter directories scanned at start (gravity_adapter.json + PEFT files); optional.
    adapters_dir: str = ""
    # Service mode: follow gravity.profiles.v1 and gravity.adapters.v1 (each replica reads both topics whole).
    follow_topics: bool = True
    # openai backend only: method -> model name vLLM already serves (started with --lora-modules).
    served_adapters: dict[str, str] = Field(default_factory=dict)

    # Default sampling when a request leaves SamplingParams unset.
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 = greedy and reproducible"
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(default=384, ge=1, description="Tokens per description")
    # Largest max_new_tokens a request may ask for.
    max_new_tokens_limit: int = Field(default=1024, ge=1)
    seed: int | None = Field(default=None, description="Sampling seed (unused when greedy)")

    # Prompt + new tokens per model call. The writer's window where the backend does not report one
    # (openai/vLLM: set it to vLLM's --max-model-len); a cap on the model's own window otherwise.
    context_window: int = Field(default=8192, ge=256)

    # No longer used: the embedded model batches continuously, so nothing waits for a batch to form.
    # Accepted (with a warning in the log) so existing configuration files keep loading.
    batch_window_ms: float | None = Field(default=None, ge=0.0)
    # Embedded: most of this service's calls in the model's running batch at once (also bounded by
    # llm.writer.max_batch_size); 1 = one request at a time.
    max_batch: int = Field(default=8, ge=1)
    # Threads serving gRPC calls; requests mostly wait on the batcher, so more than the CPU count.
    grpc_workers: int = Field(default=32, ge=1)

    # HTTP next to gRPC, in the same process (gravity_generator.web): the OpenAI-compatible API
    # (/v1/chat/completions, /v1/models), the compare page (/compare) and /healthz. Same bearer token and
    # TLS files as gRPC ([grpc] auth_token, tls_*). http_port 0 = any free port; http_host "" = grpc.host.
    http_enabled: bool = True
    http_port: int = Field(default=8000, ge=0, le=65535)
    http_host: str = ""
    # Chat completions generating at once over HTTP; one more is answered 429 (Retry-After: 1).
    http_max_inflight: int = Field(default=64, ge=1)
    # Compare page: descriptions kept per (reader, book, method), and the temperature "Regenerate" samples
    # with (a fresh seed each time; the first description of each method uses the defaults above).
    compare_cache_entries: int = Field(default=512, ge=1)
    compare_temperature: float = Field(default=0.8, gt=0.0, le=2.0)

    # LaMP: how many of the user's reviews to prepend, and how many per-user indexes to keep.
    lamp_k: int = Field(default=5, ge=1)
    lamp_cache_users: int = Field(default=1024, ge=1)
    # Longest review text (characters) put into a LaMP prompt.
    lamp_review_chars: int = Field(default=1200, ge=50)

    def resolved_meta_path(self) -> Path:
        if self.meta_path:
            return Path(self.meta_path).expanduser()
        from gravity_core.sample import sample_dir

        return sample_dir() / "meta_Books.jsonl"

    @model_validator(mode="after")
    def _warn_about_retired_settings(self) -> GeneratorSettings:
        if self.batch_window_ms is not None:
            log.warning(
                "setting_ignored",
                setting="generator.batch_window_ms",
                reason="the embedded model batches continuously; nothing waits for a batch to form",
            )
        return self
