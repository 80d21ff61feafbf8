"""What `gravity demo` runs: the sizes of the end-to-end run (paper §4 at demo scale), with the flags of
`gravity demo` generated from these fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gravity_core.sample import sample_dir


class DemoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: Path
    reviews: Path | None = None
    meta: Path | None = None
    demographics: Path | None = None
    users: int = Field(
        8,
        ge=0,
        description="Readers to personalize for, balanced across countries (0 = every qualifying reader)",
    )
    min_reviews: int = Field(20, ge=1, description="Reviews a reader needs (paper: 50)")
    books_per_user: int = Field(1, ge=1, description="Evaluation books per reader (paper: 5)")
    train_steps: int = Field(8, ge=1, description="Optimizer steps per adapter (paper: 3 epochs)")
    max_new_tokens: int = Field(160, ge=8, description="Generation length per description")
    judge_orders: int = Field(
        2,
        ge=0,
        le=26,
        description="Judge: balanced orders per debiased top-pick ranking (0 = one per description, fully "
        "balanced)",
    )
    pref_align_books: int = Field(
        2, ge=1, description="PrefAlign description pairs per reader (paper: >= 100)"
    )
    items_per_trait: int = Field(12, ge=1, description="Personality pairs per trait per reader (paper: 60)")
    recovery_readers: int = Field(
        2,
        ge=0,
        le=64,
        description="Planted readers for the closing profiler-recovery line (gravity fidelity); 0 skips it",
    )
    profiler_replicas: int = Field(
        2,
        ge=1,
        le=8,
        description="Profiler processes sharing its queue, each with its share of the cores and of the readers",
    )
    judge_processes: int = Field(
        2,
        ge=1,
        le=8,
        description="Judge worker processes, each with its share of the cores, judging readers in parallel",
    )
    train_concurrency: int = Field(
        2,
        ge=1,
        le=3,
        description="Adapters the trainer trains at once, each run in its own process sharing the cores",
    )
    timeout_s: float = Field(3600.0, gt=0, description="Give up on a stage after this many seconds")
    # dotted settings overrides for every service (tests)
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def readers(self) -> int | None:
        """Readers to choose, None for every qualifying one."""
        return self.users or None

    def files(self) -> tuple[Path, Path, Path | None]:
        src = sample_dir()
        reviews = self.reviews or src / "Books.jsonl"
        meta = self.meta or src / "meta_Books.jsonl"
        demo = (
            self.demographics
            if self.demographics is not None
            else (src / "demographics.csv" if self.reviews is None else None)
        )
        return reviews, meta, demo
