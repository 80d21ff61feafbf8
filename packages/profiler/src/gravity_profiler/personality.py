"""Big Five personality (paper §3.2): five OCEAN trait scores in [0, 1] with high/low levels.

Default estimator (``mini-ipip-llm``): the annotator LLM rates each of the 20 public-domain Mini-IPIP
items (Donnellan et al., 2006) against the user's reviews on a 1-5 scale (every chunk of the history,
answers pooled by :mod:`gravity_profiler.pooling`); the rating is the expected value under the answer
probabilities, reverse-keyed items are reversed (6 - r), and a trait's score is the mean of its readable
items rescaled from 1..5 to 0..1. An unreadable item is never given a value: a trait with fewer than
``min_readable_items`` readable items is ``TRAIT_LEVEL_UNKNOWN`` with score 0, and each trait records how
many of its items were readable. The paper used PersonalityLM, a RoBERTa classifier; that kind of model
plugs in as the ``classifier`` estimator (a local Hugging Face sequence-classification directory with a
configurable label order and threshold; a long history is read chunk by chunk and the scores averaged).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from gravity.v1 import profile_pb2
from gravity_core.errors import ConfigError
from gravity_core.llm import ChoiceScores, LLMClient
from gravity_profiler import prompts
from gravity_profiler.history import ReviewHistory
from gravity_profiler.pooling import pool_chunks
from gravity_profiler.settings import ClassifierSettings

TRAIT_OF_LETTER = {
    "O": profile_pb2.TRAIT_OPENNESS,
    "C": profile_pb2.TRAIT_CONSCIENTIOUSNESS,
    "E": profile_pb2.TRAIT_EXTRAVERSION,
    "A": profile_pb2.TRAIT_AGREEABLENESS,
    "N": profile_pb2.TRAIT_NEUROTICISM,
}
OCEAN = "OCEAN"


@dataclass(frozen=True, slots=True)
class IpipItem:
    id: str
    trait: str  # one of O, C, E, A, N
    text: str
    reverse: bool


@lru_cache(maxsize=1)
def mini_ipip_items() -> tuple[IpipItem, ...]:
    """The 20 Mini-IPIP items, shipped as package data."""
    text = resources.files("gravity_profiler").joinpath("data/mini_ipip.jsonl").read_text(encoding="utf-8")
    items = tuple(IpipItem(**json.loads(line)) for line in text.splitlines() if line.strip())
    counts = {t: sum(1 for i in items if i.trait == t) for t in OCEAN}
    if set(counts.values()) != {4} or len(items) != 20:
        raise ConfigError(f"mini_ipip.jsonl must hold 4 items per trait, got {counts}")
    return items


@dataclass(frozen=True)
class TraitReading:
    """One trait as read from the answers: its score (None when too few items were readable)."""

    score: float | None
    readable_items: int = 0
    items: int = 0


def trait_scores(readings: dict[str, TraitReading], threshold: float) -> list[profile_pb2.TraitScore]:
    """TraitScore messages in OCEAN order; a trait without a score is UNKNOWN (score 0), never HIGH or LOW."""
    out = []
    for letter in OCEAN:
        reading = readings[letter]
        if reading.score is None:
            level, score = profile_pb2.TRAIT_LEVEL_UNKNOWN, 0.0
        else:
            score = min(1.0, max(0.0, float(reading.score)))
            level = profile_pb2.TRAIT_LEVEL_HIGH if score >= threshold else profile_pb2.TRAIT_LEVEL_LOW
        out.append(
            profile_pb2.TraitScore(
                trait=TRAIT_OF_LETTER[letter],
                level=level,
                score=score,
                readable_items=reading.readable_items,
                items=reading.items,
            )
        )
    return out


def score_ipip(
    items: Sequence[IpipItem], ratings: Sequence[ChoiceScores], min_readable: int
) -> tuple[dict[str, TraitReading], int]:
    """Trait readings from per-item answer distributions over 1..5, and how many answers were unreadable.

    A trait's score is the mean of its readable items only; with fewer than ``min_readable`` of them it has
    no score (UNKNOWN). An unreadable item counts as nothing, never as the scale midpoint.
    """
    per_trait: dict[str, list[float]] = {t: [] for t in OCEAN}
    asked: dict[str, int] = dict.fromkeys(OCEAN, 0)
    unreadable = 0
    for item, rating in zip(items, ratings, strict=True):
        asked[item.trait] += 1
        value = rating.expected([1, 2, 3, 4, 5])
        if math.isnan(value):
            unreadable += 1
            continue
        per_trait[item.trait].append(6.0 - value if item.reverse else value)
    readings = {}
    for t, values in per_trait.items():
        score = (sum(values) / len(values) - 1.0) / 4.0 if len(values) >= max(1, min_readable) else None
        readings[t] = TraitReading(score, len(values), asked[t])
    return readings, unreadable


@dataclass
class PersonalityResult:
    traits: list[profile_pb2.TraitScore]
    estimator: str
    unreadable_items: int = 0

    def to_proto(self) -> profile_pb2.Personality:
        return profile_pb2.Personality(traits=self.traits, estimator=self.estimator)

    @property
    def unknown_traits(self) -> int:
        return sum(t.level == profile_pb2.TRAIT_LEVEL_UNKNOWN for t in self.traits)


class PersonalityEstimator(Protocol):
    name: str

    def estimate(self, history: ReviewHistory) -> PersonalityResult: ...


class MiniIpipEstimator:
    """The annotator LLM answers the Mini-IPIP from the reviews; every item is scored against one prefix
    per chunk of the history, and the chunks' answers are pooled."""

    name = "mini-ipip-llm"

    def __init__(self, llm: LLMClient, threshold: float, min_readable_items: int = 2) -> None:
        self.llm = llm
        self.threshold = threshold
        self.min_readable_items = min_readable_items
        self.items = mini_ipip_items()

    def estimate(self, history: ReviewHistory) -> PersonalityResult:
        questions = [prompts.ipip_question(i.text) for i in self.items]
        per_chunk = [
            self.llm.score_choices_shared_prefix(
                [{"role": "user", "content": prompts.ipip_context(chunk)}], questions, prompts.IPIP_CHOICES
            )
            for chunk in history.chunks
        ]
        readings, unreadable = score_ipip(self.items, pool_chunks(per_chunk), self.min_readable_items)
        return PersonalityResult(trait_scores(readings, self.threshold), self.name, unreadable)


class ClassifierEstimator:
    """A local Hugging Face sequence-classification model with one logit per OCEAN trait."""

    def __init__(self, settings: ClassifierSettings, threshold: float | None = None) -> None:
        if not settings.path:
            raise ConfigError(
                "profiler.classifier.path must name a local model directory for the classifier estimator"
            )
        path = Path(settings.path).expanduser()
        if not (path / "config.json").is_file():
            raise ConfigError(f"profiler.classifier.path {path} has no config.json")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.settings = settings
        self.threshold = settings.threshold if threshold is None else threshold
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model: Any = AutoModelForSequenceClassification.from_pretrained(path).to(settings.device)
        self.model.eval()
        n_labels = int(self.model.config.num_labels)
        if n_labels != len(settings.label_order):
            raise ConfigError(
                f"classifier at {path} has {n_labels} labels but profiler.classifier.label_order names "
                f"{len(settings.label_order)}"
            )
        self.name = f"classifier:{path}"

    def estimate(self, history: ReviewHistory) -> PersonalityResult:
        per_chunk = [self._scores(chunk) for chunk in history.chunks or ("",)]
        # A classifier's scores carry no unreadable answers to pool: the chunks' scores are averaged.
        mean = {t: sum(c[t] for c in per_chunk) / len(per_chunk) for t in OCEAN}
        return PersonalityResult(
            trait_scores({t: TraitReading(v) for t, v in mean.items()}, self.threshold), self.name
        )

    def _scores(self, text: str) -> dict[str, float]:
        import torch

        enc = self.tokenizer(
            text or ".", truncation=True, max_length=self.settings.max_length, return_tensors="pt"
        ).to(self.settings.device)
        with torch.inference_mode():
            logits = self.model(**enc).logits[0].float()
        if self.settings.activation == "sigmoid":
            values = torch.sigmoid(logits)
        else:
            # Softmax scores sum to 1; rescale so an even split (1/5 each) sits at 0.5.
            values = torch.clamp(torch.softmax(logits, dim=-1) * len(logits) / 2, 0.0, 1.0)
        return {letter: float(v) for letter, v in zip(self.settings.label_order, values, strict=True)}
