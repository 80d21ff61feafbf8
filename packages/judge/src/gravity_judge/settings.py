"""The ``[judge]`` configuration section (env: ``GRAVITY_JUDGE__<KEY>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gravity_core import names

Metric = Literal["ranking", "pairwise", "likert", "similarity"]
ALL_METRICS: tuple[Metric, ...] = ("ranking", "pairwise", "likert", "similarity")
ProtocolChoice = Literal["paper", "debiased", "both"]


class JudgeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: ProtocolChoice = Field(
        "both",
        description="paper: §4.1/D.3 as written (comparable with Table 2); debiased: balanced orders with the "
        "judge's slot prior divided out; both: side by side in one report",
    )
    # Debiased protocol: presentation orders per top-pick question. 0 = one per candidate (every description
    # in every slot once, fully balanced); a lower number caps it at evenly spaced rotations (partly
    # balanced, said so in the report).
    orders: int = Field(
        default=0, ge=0, le=26, description="Debiased protocol: orders per ranking, 0 = one per description"
    )
    seed: int = Field(13, description="Seed of the presentation orders and the bootstrap (a re-run repeats)")
    bootstrap_samples: int = Field(
        default=1000, ge=0, description="Bootstrap resamples of (user, book) units per confidence interval"
    )
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    # "auto": answers from token log-probabilities where the backend gives them (an OpenAI endpoint
    # without them falls back to parsing) and, on the embedded backend, the paper ranking by
    # letter-constrained greedy decoding; "text": always generate a short answer and parse it.
    answer_mode: Literal["auto", "text"] = Field(
        "auto",
        description="auto: answers from log-probabilities where available; text: generate and parse",
    )
    # Tokens generated per one-label answer in text mode.
    text_max_tokens: int = Field(default=12, ge=1)
    # Tokens generated for a free-text paper ranking (chat endpoints and text mode).
    ranking_max_tokens: int = Field(default=160, ge=8)
    # A pair is a tie when the averaged preference probability is within this distance of 0.5.
    tie_margin: float = Field(default=0.0, ge=0.0, lt=0.5)
    # Descriptions longer than this are cut (at a word) before judging, so a ranking prompt with every
    # method fits the judge's context; the report counts cut descriptions.
    max_description_chars: int = Field(default=2000, ge=200)
    # Which judgments to make; leaving some out is a demo/debug knob (the report shows "–" for them).
    # "ranking" covers both protocols' ranking questions, "pairwise" is the debiased protocol's A/B.
    metrics: list[Metric] = Field(default_factory=lambda: list(ALL_METRICS))
    # Put ablation variants (gravity-no-*, gravity-sft) into the rankings too (Table 6 style).
    rank_ablations: bool = False
    # Ablations are tested against this method (paired Wilcoxon, Table 5).
    ablation_reference: str = names.GRAVITY
    # The method whose per-genre preference gains are plotted (Figure 3).
    focus_method: str = names.GRAVITY
    # Readers whose judged descriptions are shown in the report (one unit each), so a person can read them.
    example_readers: int = Field(default=3, ge=0)
    # Further method names accepted as main methods (e.g. a new baseline served by the generator).
    extra_methods: list[str] = Field(default_factory=list)
    # Service: profiles loaded at start (profiles.jsonl), and/or follow gravity.profiles.v1.
    profiles_file: str = ""
    follow_profiles: bool = False
    # Seconds an RPC waits for the judge model to finish loading before answering UNAVAILABLE.
    model_wait_s: float = Field(default=120.0, ge=0.0)
