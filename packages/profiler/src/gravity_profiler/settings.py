"""The ``[profiler]`` configuration section (env: ``GRAVITY_PROFILER__<KEY>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Protocol = Literal["shared-prefix", "per-statement"]
Estimator = Literal["mini-ipip-llm", "classifier"]
# The context assumed for an endpoint that reports no window (OpenAI-compatible): set context_tokens for yours.
REMOTE_CONTEXT_TOKENS = 8192


class ClassifierSettings(BaseModel):
    """A Hugging Face sequence-classification Big Five model read from a local directory."""

    model_config = ConfigDict(extra="forbid")

    # Local directory holding config.json, weights and tokenizer files (never downloaded).
    path: str = ""
    # Trait of each output logit, in order: any permutation of O, C, E, A, N.
    label_order: list[str] = Field(default_factory=lambda: ["O", "C", "E", "A", "N"])
    # sigmoid: each logit is an independent high/low score (multi-label heads);
    # softmax: logits compete, scores are rescaled so the mean trait sits at 0.5.
    activation: Literal["sigmoid", "softmax"] = "sigmoid"
    threshold: float = 0.5
    max_length: int = 512
    device: str = "cpu"

    @field_validator("label_order")
    @classmethod
    def _ocean(cls, value: list[str]) -> list[str]:
        upper = [v.strip().upper()[:1] for v in value]
        if sorted(upper) != sorted("OCEAN"):
            raise ValueError("must name each of O, C, E, A, N exactly once")
        return upper


class ProfilerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_reviews: int = Field(
        default=20,
        ge=1,
        description="Reviews (of known books) a reader needs to be profiled; paper: 50, sample: 20",
    )
    # A genre is an interest when it holds at least this share of the user's reviews (paper: 10%).
    interest_threshold: float = Field(default=0.10, gt=0.0, le=1.0)
    protocol: Protocol = Field(
        "shared-prefix",
        description="Stance inference: shared-prefix (history encoded once) or per-statement (the paper's)",
    )
    # How shared-prefix runs on an OpenAI-compatible endpoint: "batched" asks for several statements per
    # call with a numbered answer format (OpenAI); "prefix-cache" sends one scoring request per statement
    # with the history first, so a server with prefix caching (vLLM) encodes it once.
    remote_strategy: Literal["batched", "prefix-cache"] = "batched"
    # Statements per call in the "batched" remote strategy.
    remote_batch_size: int = Field(default=10, ge=1, le=50)
    # Seed statement bank (JSONL); empty = the bundled 150 statements.
    statements_path: str = ""
    # Every review is read (paper §3.2: "the user's full set of product reviews"): a history longer than
    # one prompt is split into context-sized chunks whose answers are pooled. Each single review is cut
    # at max_review_chars.
    prompt_review_chars: int = Field(
        default=0,
        ge=0,
        description="Cap on the characters of history the prompts read (most recent first); 0 = every review",
    )
    max_review_chars: int = Field(default=800, ge=50)
    # Tokens one prompt may use; 0 = the models' own context windows (the smaller of annotator and author;
    # an OpenAI-compatible endpoint reports none, so 0 means REMOTE_CONTEXT_TOKENS there).
    context_tokens: int = Field(default=0, ge=0)
    # Reviews stored in the profile (most recent first), for LaMP and UserSFT.
    max_reviews_in_profile: int = Field(default=200, ge=0)
    # Personality estimator and its threshold (a trait is HIGH when its score >= the threshold).
    personality_estimator: Estimator = "mini-ipip-llm"
    trait_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    # A Mini-IPIP trait needs at least this many of its 4 items answered readably; with fewer its level is
    # UNKNOWN (never guessed) and it stays out of prompts and preference pairs.
    min_readable_items: int = Field(default=2, ge=1, le=4)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    # Candidate countries when a user's country must be estimated.
    countries: list[str] = Field(default_factory=lambda: ["USA", "Brazil", "India", "Japan"])
    # Summaries by the author LLM: generated in batches across users.
    summary_max_tokens: int = Field(default=128, ge=16)
    value_summary_max_sentences: int = Field(default=6, ge=1)
    # Supported/opposed statements listed in the value-summary prompt (most confident first).
    value_summary_max_statements: int = Field(default=24, ge=1)
    # Users profiled together (LLM summaries are batched over them).
    batch_users: int = Field(default=8, ge=1)
    # IngestRecords metadata for a book the catalog already holds with different fields: "refuse" (counted
    # and dead-lettered as catalog_conflict) or "version" (replace it, keeping the old record).
    catalog_updates: Literal["refuse", "version"] = "refuse"
    # Service: the background worker's idle poll interval.
    worker_poll_s: float = Field(default=1.0, gt=0.0)

    @field_validator("prompt_review_chars")
    @classmethod
    def _cap(cls, value: int) -> int:
        if 0 < value < 200:
            raise ValueError("must be 0 (no cap: read every review) or at least 200 characters")
        return value

    @field_validator("context_tokens")
    @classmethod
    def _context(cls, value: int) -> int:
        if 0 < value < 512:
            raise ValueError("must be 0 (the models' own context windows) or at least 512 tokens")
        return value

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(v.strip() for v in value if v.strip()))
        if not cleaned:
            raise ValueError("needs at least one country")
        return cleaned


def profiler_settings(settings: object) -> ProfilerSettings:
    """The validated ``[profiler]`` section of a core Settings object."""
    return settings.section("profiler", ProfilerSettings)  # type: ignore[attr-defined]
