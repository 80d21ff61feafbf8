"""Judge validity: can the judge tell a description written for this reader from one written for another?
(paper §4.1, D.3 measured against a known truth)

For every planted reader, each of their first ``books_per_reader`` evaluation books (the pair generator's
choice, paper §3.4, so books no training pair used) is described twice with the same method: once for the reader and once for a different reader (the same
derangement as the learning control, so nobody is paired with themself). The judge then plays the reader
— the D.3 persona built from the truth: demographics plus a summary of their genres, temperament and
named values — and compares the two descriptions with the two-description form of the D.3 prompt, asked in
both orders (A/B and B/A, averaged). The **persona-swap rate** is the share of usable units where the
reader's own description wins; a judge that sees the profile scores above one half.

Descriptions come from the generator's library. The default method is ``user-summary`` (Table 12), driven
by the truth's summary; ``gravity`` uses the GRAVITY adapter trained by ``gravity fidelity train``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gravity_core.amazon import BookRecord
from gravity_core.catalog import Catalog
from gravity_core.config import Settings
from gravity_core.errors import InvalidInput
from gravity_core.skips import SkipLog
from gravity_core.targets import EvaluationPool
from gravity_fidelity.methods import ADAPTER_METHODS, SWAP_METHODS
from gravity_fidelity.split import derangement
from gravity_fidelity.truth import ReaderTruth, persona_summary, truth_profile
from gravity_judge.judging import Candidate, Judge, PairJudgment
from gravity_judge.persona import Persona
from gravity_judge.stats import estimate, resample_indices

BOOTSTRAP = 1000
OWN = "own"
OTHER = "other"


@dataclass(frozen=True)
class SwapUnit:
    """One reader, one book, one method: the reader's own description and another reader's."""

    reader: str
    other: str
    parent_asin: str
    title: str
    method: str
    own_text: str = ""
    other_text: str = ""


@dataclass
class SwapOutcome:
    unit: SwapUnit
    judgment: PairJudgment

    def to_dict(self) -> dict[str, object]:
        j = self.judgment
        return {
            "reader": self.unit.reader,
            "other": self.unit.other,
            "parent_asin": self.unit.parent_asin,
            "method": self.unit.method,
            "usable": j.usable,
            "reason": j.reason,
            "p_own": round(j.probability_a, 4),
            "outcome": {"a": OWN, "b": OTHER}.get(j.outcome, j.outcome),
            "orders_agree": j.orders_agree,
            "position_biased": j.position_biased,
            "answers": list(j.raw_answers),
        }


@dataclass
class SwapReport:
    judge: str
    method: str
    outcomes: list[SwapOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def usable(self) -> list[PairJudgment]:
        return [o.judgment for o in self.outcomes if o.judgment.usable]

    @property
    def own_wins(self) -> int:
        return sum(j.outcome == "a" for j in self.usable)

    @property
    def rate(self) -> float | None:
        return self.own_wins / len(self.usable) if self.usable else None

    def rate_interval(self, seed: int = 0) -> tuple[float | None, float | None]:
        """95% percentile-bootstrap interval of the rate (units resampled)."""
        wins = np.array([float(j.outcome == "a") for j in self.usable])
        est = estimate(wins, resample_indices(wins.size, BOOTSTRAP, seed))
        return est.low, est.high

    def to_dict(self) -> dict[str, object]:
        usable = self.usable
        return {
            "judge": self.judge,
            "method": self.method,
            "units": len(self.outcomes),
            "usable": len(usable),
            "own_wins": self.own_wins,
            "other_wins": sum(j.outcome == "b" for j in usable),
            "ties": sum(j.outcome == "tie" for j in usable),
            "swap_rate": None if self.rate is None else round(self.rate, 4),
            "swap_rate_ci": [None if x is None else round(x, 4) for x in self.rate_interval()],
            "mean_p_own": round(sum(j.probability_a for j in usable) / len(usable), 4) if usable else None,
            "orders_agree": sum(j.orders_agree for j in usable),
            "position_biased": sum(j.position_biased for j in usable),
            "seconds": round(self.seconds, 1),
            "judgments": [o.to_dict() for o in self.outcomes],
        }


def swap_plan(
    truths: Sequence[ReaderTruth], catalog: Catalog, settings: Settings, seed: int, books_per_reader: int = 1
) -> list[tuple[ReaderTruth, ReaderTruth, BookRecord]]:
    """(reader, other reader, book) for the first ``books_per_reader`` evaluation books of every reader."""
    if len(truths) < 2:
        raise InvalidInput("--truth", "persona swaps need at least two planted readers")
    if books_per_reader < 1:
        raise InvalidInput("--books-per-reader", "must be at least 1")
    by_id = {t.user_id: t for t in truths}
    partner = derangement(list(by_id), seed)
    pool = EvaluationPool(catalog, settings.evaluation)
    return [
        (truth, by_id[partner[truth.user_id]], book)
        for truth in truths
        for book in pool.targets(truth_profile(truth), books_per_reader)
    ]


def persona_of(truth: ReaderTruth) -> Persona:
    d = truth.demographics
    return Persona(truth.user_id, d.age_group, d.gender, d.country, persona_summary(truth))


def write_descriptions(
    settings: Settings,
    plan: Sequence[tuple[ReaderTruth, ReaderTruth, BookRecord]],
    meta: Path,
    method: str,
    max_new_tokens: int,
    adapter_dir: Path | None = None,
) -> tuple[list[SwapUnit], list[str]]:
    """Both descriptions of every unit, generated by the generator's batch library (greedy, so repeatable);
    returns the units and, for each unit left out because a description failed, ``reader/book``."""
    from gravity_core.llm import GenerationParams
    from gravity_generator.app import GeneratorApp
    from gravity_generator.batch import generate_batch
    from gravity_generator.settings import GeneratorSettings

    if method in ADAPTER_METHODS and (adapter_dir is None or not adapter_dir.is_dir()):
        raise InvalidInput(
            "--adapter", f"method {method!r} needs the GRAVITY adapter (run gravity fidelity train first)"
        )
    if method not in SWAP_METHODS:
        raise InvalidInput("--method", f"{method!r} is not one of {', '.join(SWAP_METHODS)}")
    cfg = settings.section("generator", GeneratorSettings).model_copy(
        update={
            "meta_path": str(meta),
            "adapters_dir": str(adapter_dir) if method in ADAPTER_METHODS else "",
            "profiles_path": "",
            "follow_topics": False,
        }
    )
    app = GeneratorApp(settings, cfg, micro_batch=False, skips=SkipLog())
    app.load()
    try:
        jobs = []
        for reader, other, book in plan:
            jobs += [(truth_profile(reader), book), (truth_profile(other), book)]
        report = generate_batch(
            app, [method], jobs, GenerationParams(max_tokens=max_new_tokens), chunk_size=8
        )
    finally:
        app.close()
    texts = {(g.user_id, g.parent_asin): g.text for g in report.generations}
    units, missing = [], []
    for reader, other, book in plan:
        own, foreign = (
            texts.get((reader.user_id, book.parent_asin)),
            texts.get((other.user_id, book.parent_asin)),
        )
        if own and foreign:
            units.append(
                SwapUnit(reader.user_id, other.user_id, book.parent_asin, book.title, method, own, foreign)
            )
        else:
            missing.append(f"{reader.user_id}/{book.parent_asin}")
    return units, missing


def judge_swaps(
    judge: Judge,
    units: Sequence[SwapUnit],
    truths: Sequence[ReaderTruth],
    label: str,
    progress: Callable[[Iterable, int | None, str], Iterable] | None = None,
) -> SwapReport:
    """Each unit judged as the reader: own vs other description, both orders."""
    started = time.perf_counter()
    by_id = {t.user_id: t for t in truths}
    report = SwapReport(label, units[0].method if units else "")
    for unit in progress(units, len(units), f"judging ({label})") if progress else units:
        judgment = judge.compare(
            persona_of(by_id[unit.reader]), Candidate(OWN, unit.own_text), [Candidate(OTHER, unit.other_text)]
        )[0]
        report.outcomes.append(SwapOutcome(unit, judgment))
    report.seconds = time.perf_counter() - started
    return report
