"""The ``[pairgen]`` configuration section (env: ``GRAVITY_PAIRGEN__<KEY>``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gravity_core.names import DATASETS as BASE_DATASETS
from gravity_core.names import FULL_RECIPE
from gravity_core.options import apply_options, split_list
from gravity_pairgen.recipes import normalize_ablations, normalize_recipe


class PairGenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = Field(
        default_factory=lambda: list(BASE_DATASETS),
        description="Datasets to build: gravity (DPO), gravity-sft, user-sft, pref-align",
    )
    recipe: str = Field(
        FULL_RECIPE,
        description='Facets kept in the gravity dataset: "full" or "no-<ablation>" (e.g. no-values)',
    )
    ablations: list[str] = Field(
        default_factory=list,
        description="Table 5 ablations, each written as dataset gravity-no-<name>: interests, category, summary, "
        "values, personality, openness, conscientiousness, extraversion, agreeableness, neuroticism, or all",
    )
    seed: int = Field(13, description="Sampling seed")
    meta: str = Field(
        "", description="Item metadata (meta_Books.jsonl[.gz]); empty means the bundled sample catalog"
    )

    # Interests (paper §3.3, appendix B)
    max_user_genres: int = Field(5, ge=1)
    distinct_categories: int = Field(3, ge=1)
    books_per_genre: int = Field(3, ge=1)
    # Descriptions are cut at a sentence boundary below this many characters (0 = never).
    description_max_chars: int = Field(1500, ge=0)

    # Values and beliefs
    scenario_pool: str = ""  # a custom pool JSONL; empty means the shipped pool
    pairs_per_statement: int = Field(3, ge=1)
    generate_scenarios: bool = False  # top each statement up to pairs_per_statement with the author LLM
    scenario_max_tokens: int = Field(512, ge=32)

    # Personality
    items_per_trait: int = Field(60, ge=1, description="Personality items sampled per trait and user")
    builtin_sjt: bool = True
    trait_files: list[str] = Field(default_factory=list)
    big5chat_files: list[str] = Field(default_factory=list)

    # Baselines
    pref_align_min_books: int = Field(100, ge=0, description="PrefAlign books per user at least (paper: 100)")
    pref_align_max_books: int = Field(0, ge=0, description="PrefAlign books per user at most (0 = no cap)")
    pref_align_max_tokens: int = Field(256, ge=8, description="Tokens per generated PrefAlign description")
    # Users whose PrefAlign generations share one chat_batch call (batch mode; the service prepares up to
    # this many profiles of one poll together).
    llm_batch_users: int = Field(16, ge=1)
    # How long the consumer waits, from a cohort's first profile, for the rest of it before generating the
    # PrefAlign descriptions of the profiles it has (several profiler replicas publish a cohort seconds apart).
    cohort_wait_s: float = Field(30.0, ge=0.0)

    # Service
    consumer_group: str = "pairgen"
    output_prefix: str = "datasets"

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, value: list[str]) -> list[str]:
        unknown = [d for d in value if d not in BASE_DATASETS]
        if unknown:
            raise ValueError(f"unknown dataset(s) {unknown}; choose from {', '.join(BASE_DATASETS)}")
        if not value:
            raise ValueError("at least one dataset is required")
        return list(dict.fromkeys(value))

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, value: str) -> str:
        return normalize_recipe(value)

    @field_validator("ablations", mode="before")
    @classmethod
    def _known_ablations(cls, value: object) -> list[str]:
        if isinstance(value, str):
            value = split_list(value)
        if not isinstance(value, list | tuple):
            raise ValueError("ablations is a list of profile parts (or a comma-separated string)")
        return normalize_ablations([str(v) for v in value])

    @model_validator(mode="after")
    def _caps(self) -> PairGenSettings:
        if self.pref_align_max_books and self.pref_align_max_books < self.pref_align_min_books:
            raise ValueError("pref_align_max_books must be 0 (no cap) or at least pref_align_min_books")
        return self

    def with_overrides(self, **updates: object) -> PairGenSettings:
        """A validated copy with ``updates`` applied (None values are ignored)."""
        return apply_options(self, **updates)
