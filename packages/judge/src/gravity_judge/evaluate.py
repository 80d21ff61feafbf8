"""Judge every unit under the protocols asked for: similarity, the paper's full ranking, the debiased top
pick and pairwise preference vs the original, and Likert ratings (read both ways).

The stages run one after the other over all units so progress is reported per stage. Calls for one unit
are grouped (shared persona prefixes on the embedded backend); with an OpenAI-compatible judge, units are
judged concurrently up to the endpoint's ``concurrency``. After the debiased stages, the judge's slot
priors are estimated from every unit's answers and divided out of each judgment (debias.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gravity_core.embeddings import Embedder
from gravity_core.logging import get_logger
from gravity_judge import methods as m
from gravity_judge import protocols as proto
from gravity_judge.debias import SlotPriors
from gravity_judge.inputs import EvaluationSet, Unit
from gravity_judge.judging import (
    Candidate,
    Judge,
    LikertJudgment,
    PairJudgment,
    PaperRanking,
    RankJudgment,
    correct_judgments,
)
from gravity_judge.settings import JudgeSettings

log = get_logger(__name__)
T = TypeVar("T")
Tracker = Callable[[Iterable[Any], str, int], Iterable[Any]]


def untracked(items: Iterable[T], _stage: str, _total: int) -> Iterable[T]:
    return items


@dataclass
class UnitResult:
    unit: Unit
    # Debiased protocol: the top pick over balanced orders, and each method vs the original.
    ranking: RankJudgment | None = None
    pairs: dict[str, PairJudgment] = field(default_factory=dict)
    likert: dict[str, LikertJudgment] = field(default_factory=dict)
    # method -> cosine similarity x 100 to the original
    similarity: dict[str, float] = field(default_factory=dict)
    # Paper protocol: the judge's full ranking in one order.
    paper: PaperRanking | None = None


@dataclass
class UnusableLog:
    """Judgments whose answer could not be used, by kind and reason, with the first examples."""

    keep: int = 50
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[dict[str, str]] = field(default_factory=list)

    def add(self, kind: str, reason: str, unit: Unit, method: str = "", raw: str = "") -> None:
        self.counts[(kind, reason)] += 1
        if len(self.examples) < self.keep:
            self.examples.append(
                {"kind": kind, "reason": reason, "unit": unit.key, "method": method, "answer": raw[:200]}
            )

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_kind(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (kind, _), n in self.counts.items():
            out[kind] += n
        return dict(out)

    def by_reason(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (_, reason), n in self.counts.items():
            out[reason] += n
        return dict(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_kind": self.by_kind(),
            "by_reason": self.by_reason(),
            "examples": list(self.examples),
        }


@dataclass
class EvaluationRun:
    evalset: EvaluationSet
    results: list[UnitResult]
    ranked_methods: list[str]
    metrics: list[str]
    unusable: UnusableLog
    judge_model: str
    judge_backend: str
    answer_mode: str
    truncated_descriptions: int
    answer_methods: Counter[str]
    timings_s: dict[str, float]
    llm_usage: dict[str, int]
    protocols: list[str] = field(default_factory=lambda: list(proto.ALL))
    priors: SlotPriors = field(default_factory=SlotPriors)


class Evaluator:
    def __init__(
        self,
        judge: Callable[[], Judge],
        settings: JudgeSettings,
        embedder: Callable[[], Embedder] | None = None,
        concurrency: int = 1,
        label: tuple[str, str] = ("", ""),
    ) -> None:
        """``judge`` is called once, and only when there is something to judge (so an input with no usable
        unit never loads a model); ``label`` is (model, backend) for the report in that case."""
        self._judge_factory = judge
        self._judge: Judge | None = None
        self.label = label
        self.settings = settings
        self._embedder = embedder or Embedder
        self.concurrency = max(1, concurrency)

    def run(self, evalset: EvaluationSet, track: Tracker = untracked) -> EvaluationRun:
        s = self.settings
        protocols = proto.selected(s.protocol)
        paper, debiased = proto.PAPER in protocols, proto.DEBIASED in protocols
        results = [UnitResult(u) for u in evalset.units]
        unusable = UnusableLog()
        answer_methods: Counter[str] = Counter()
        ranked = m.ranked_methods([m.ORIGINAL, *evalset.methods], s.extra_methods, s.rank_ablations)
        timings: dict[str, float] = {}
        judge = self._judge_factory() if results else None
        self._judge = judge
        usage_before = _usage(judge)

        if "similarity" in s.metrics and results:
            started = time.perf_counter()
            self._similarity(results, track)
            timings["similarity"] = time.perf_counter() - started

        if paper and "ranking" in s.metrics and results:
            started = time.perf_counter()
            for r in self._each(results, "paper-ranking", lambda r: self._rank_paper(r, ranked), track):
                if r.paper is None:
                    continue
                if r.paper.usable:
                    answer_methods[r.paper.method] += 1
                else:
                    unusable.add("paper-ranking", r.paper.reason, r.unit, "", r.paper.raw_text)
            timings["paper-ranking"] = time.perf_counter() - started

        if debiased and "ranking" in s.metrics and results:
            started = time.perf_counter()
            for r in self._each(results, "ranking", lambda r: self._rank(r, ranked), track):
                if r.ranking is None:
                    continue
                if r.ranking.usable:
                    answer_methods.update(r.ranking.answer_methods)
                else:
                    unusable.add("ranking", r.ranking.reason, r.unit, "", "; ".join(r.ranking.raw_answers))
            timings["ranking"] = time.perf_counter() - started

        if debiased and "pairwise" in s.metrics and results:
            started = time.perf_counter()
            for r in self._each(results, "pairwise", self._compare, track):
                for method, pair in r.pairs.items():
                    answer_methods.update(pair.answer_methods)
                    if not pair.usable:
                        unusable.add("pairwise", pair.reason, r.unit, method, "; ".join(pair.raw_answers))
            timings["pairwise"] = time.perf_counter() - started

        if "likert" in s.metrics and results:
            started = time.perf_counter()
            for r in self._each(results, "likert", self._rate, track):
                for method, rating in r.likert.items():
                    if rating.usable:
                        answer_methods[rating.answer_method] += 1
                    else:
                        unusable.add("likert", rating.reason, r.unit, method, rating.raw_answer)
            timings["likert"] = time.perf_counter() - started

        priors = correct_slot_priors(results, s.tie_margin) if debiased else SlotPriors()
        usage_after = _usage(judge)
        model, backend = (judge.llm.info.name, judge.llm.info.backend) if judge else self.label
        return EvaluationRun(
            evalset=evalset,
            results=results,
            ranked_methods=ranked,
            metrics=list(s.metrics),
            unusable=unusable,
            judge_model=model,
            judge_backend=backend,
            answer_mode=s.answer_mode,
            truncated_descriptions=_count_truncated(evalset, s.max_description_chars),
            answer_methods=answer_methods,
            timings_s={k: round(v, 3) for k, v in timings.items()},
            llm_usage={k: usage_after[k] - usage_before[k] for k in usage_after},
            protocols=protocols,
            priors=priors,
        )

    # ------------------------------------------------------------- stages
    def _each(
        self, results: list[UnitResult], stage: str, fn: Callable[[UnitResult], None], track: Tracker
    ) -> Iterator[UnitResult]:
        def work(r: UnitResult) -> UnitResult:
            fn(r)
            return r

        if self.concurrency == 1 or len(results) < 2:
            for r in track(results, stage, len(results)):
                yield work(r)
            return
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"judge-{stage}")
        try:
            yield from track(pool.map(work, results), stage, len(results))
        finally:  # a cancelled run must not wait for units nobody will read
            pool.shutdown(wait=True, cancel_futures=True)

    def _similarity(self, results: list[UnitResult], track: Tracker) -> None:
        embedder = self._embedder()
        pairs = [(r, method) for r in results for method in r.unit.outputs]
        chunk = 256
        for start in track(range(0, len(pairs), chunk), "similarity", (len(pairs) + chunk - 1) // chunk):
            part = pairs[start : start + chunk]
            sims = embedder.similarity(
                [r.unit.original for r, _ in part], [r.unit.outputs[k] for r, k in part]
            )
            for (r, method), value in zip(part, sims, strict=True):
                r.similarity[method] = float(value) * 100.0

    def _rank(self, r: UnitResult, ranked: list[str]) -> None:
        u = r.unit
        ids = [k for k in ranked if k == m.ORIGINAL or k in u.outputs]
        if len(ids) < 2:
            return
        candidates = [Candidate(k, u.original if k == m.ORIGINAL else u.outputs[k]) for k in ids]
        assert self._judge is not None
        r.ranking = self._judge.rank(u.persona, candidates, key=u.parent_asin)

    def _rank_paper(self, r: UnitResult, ranked: list[str]) -> None:
        u = r.unit
        ids = [k for k in ranked if k == m.ORIGINAL or k in u.outputs]
        if len(ids) < 2:
            return
        candidates = [Candidate(k, u.original if k == m.ORIGINAL else u.outputs[k]) for k in ids]
        assert self._judge is not None
        r.paper = self._judge.rank_paper(u.persona, candidates, key=u.parent_asin)

    def _compare(self, r: UnitResult) -> None:
        u = r.unit
        others = [Candidate(k, text) for k, text in u.outputs.items()]
        assert self._judge is not None
        for pair in self._judge.compare(u.persona, Candidate(m.ORIGINAL, u.original), others):
            # stored from the method's side: a = original, so the method wins when the outcome is "b"
            r.pairs[pair.b] = pair

    def _rate(self, r: UnitResult) -> None:
        u = r.unit
        candidates = [Candidate(m.ORIGINAL, u.original)] + [Candidate(k, t) for k, t in u.outputs.items()]
        assert self._judge is not None
        for rating in self._judge.rate(u.persona, candidates):
            r.likert[rating.id] = rating


def correct_slot_priors(results: list[UnitResult], tie_margin: float) -> SlotPriors:
    """Divide the judge's slot priors, estimated from every unit's debiased answers, out of each unit's
    top pick and pairs (judging.correct_judgments)."""
    ranked = [r for r in results if r.ranking is not None]
    pair_keys = [(r, method) for r in results for method in r.pairs]
    ranks, pairs, priors = correct_judgments(
        [r.ranking for r in ranked if r.ranking is not None], [r.pairs[k] for r, k in pair_keys], tie_margin
    )
    for r, rank in zip(ranked, ranks, strict=True):
        r.ranking = rank
    for (r, method), pair in zip(pair_keys, pairs, strict=True):
        r.pairs[method] = pair
    return priors


def _usage(judge: Judge | None) -> dict[str, int]:
    if judge is None:
        return {"calls": 0, "cached_calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
    u = judge.llm.usage
    return {
        "calls": u.calls,
        "cached_calls": u.cached_calls,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
    }


def _count_truncated(evalset: EvaluationSet, max_chars: int) -> int:
    texts = {u.original for u in evalset.units} | {t for u in evalset.units for t in u.outputs.values()}
    return sum(1 for t in texts if len(" ".join(t.split())) > max_chars)
