"""The ``[study]`` configuration section (env: ``GRAVITY_STUDY__<KEY>``): the user study app (paper §4.1, D.4)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gravity_core import names
from gravity_core.paths import gravity_home


class EmbeddedTraining(BaseModel):
    """Sizes of the in-process pairs -> training run (``pipeline = "embedded"``)."""

    model_config = ConfigDict(extra="forbid")

    # Optimizer steps of the gravity-dpo run (the paper trains 3 epochs on GPUs; a CPU demo trains a few).
    max_steps: int = Field(default=6, ge=1)
    # Personality situational-judgment pairs per OCEAN trait and participant (paper: 60).
    items_per_trait: int = Field(default=12, ge=1)
    max_length: int = Field(default=320, ge=64)
    batch_size: int = Field(default=4, ge=1)
    lora_r: int = Field(default=8, ge=1)


class StudySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data_dir: str = Field(
        "",
        description="The database (SQLite by default), the cohorts' pairs and adapters, and exports; "
        "empty = $GRAVITY_HOME/study",
    )
    # Any SQLAlchemy URL (postgresql+psycopg://..., mysql+pymysql://...); empty = SQLite in data_dir.
    database_url: SecretStr | None = None
    host: str = Field("127.0.0.1", description="Listen address")
    port: int = Field(default=8050, ge=0, le=65535, description="Listen port (0 = any free port)")
    # The address participants reach (links on the admin page); empty = http://host:port.
    public_url: str = ""
    # The administrator's password/token. Never logged; required by `gravity study serve`.
    admin_token: SecretStr | None = None
    # Signs admin session cookies; empty = a random key kept in the database.
    secret_key: SecretStr | None = None
    # Send cookies only over HTTPS (set behind a TLS-terminating proxy).
    secure_cookies: bool = False

    # Where descriptions come from: "embedded" runs pairgen, the trainer and the generator in this process;
    # "services" publishes profiles to gravity.profiles.v1, waits for the trainer's adapter on
    # gravity.adapters.v1 and asks the generator service over gRPC (grpc.targets.generator).
    pipeline: Literal["embedded", "services"] = "embedded"
    # The LLM judge for the judge-participant agreement: in-process ("embedded") or the judge service.
    judge: Literal["embedded", "service"] = "embedded"
    judge_orders: int = Field(default=2, ge=1, le=26)
    # Catalog the ranking books come from; empty = the bundled sample.
    meta_path: str = ""
    # Tokens per generated description.
    max_new_tokens: int = Field(default=160, ge=8)
    embedded: EmbeddedTraining = Field(default_factory=EmbeddedTraining)
    # Defaults of a new study (each study stores its own).
    baseline: str = names.TRI_AGENT
    books_per_participant: int = Field(default=10, ge=1, le=50)
    countries: list[str] = Field(default_factory=lambda: ["USA", "Brazil", "Japan", "India"])
    # Bootstrap resamples and confidence of every interval in the results.
    bootstrap_samples: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    seed: int = 13

    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser() if self.data_dir else gravity_home() / "study"

    def resolved_database_url(self) -> str:
        if self.database_url is not None and self.database_url.get_secret_value():
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_path() / 'study.sqlite'}"

    def resolved_meta_path(self) -> Path:
        if self.meta_path:
            return Path(self.meta_path).expanduser()
        from gravity_core.sample import sample_dir

        return sample_dir() / "meta_Books.jsonl"

    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


def study_settings(settings: object) -> StudySettings:
    return settings.section("study", StudySettings)  # type: ignore[attr-defined]
