"""Per-unit outcomes -> the paper's aggregates, for each protocol: Table 2 per method, per country (Tables
14-17), per Amazon category, per paper genre cluster and fiction vs non-fiction (Figure 3), ablations with
paired Wilcoxon tests (Table 5); the judge's position bias per protocol; and how far the protocols agree.

Every rate is a mean over (user, book) units with a bootstrap interval from resampling units. Per unit:
  paper     win 1 when the method is ranked first in the judge's ranking, else 0; preference gain 1 when
            it is ranked above the original in that same ranking, else 0; interestingness the 1-5 answer
  debiased  win 1 when the method has the highest corrected first-place probability over the balanced
            orders (1/k when k tie exactly); preference gain 1 when its corrected A/B probability of being
            preferred over the original is > 0.5 (ties count as not preferred and are reported);
            interestingness the expected 1-5 score
  both      similarity: MiniLM cosine to the original x 100
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gravity_core import genres
from gravity_judge import methods as m
from gravity_judge import protocols as proto
from gravity_judge.evaluate import EvaluationRun, UnitResult
from gravity_judge.judging import corrected_probabilities
from gravity_judge.settings import JudgeSettings
from gravity_judge.stats import Estimate, estimate, paired_wilcoxon, resample_indices, seed_for

NAN = math.nan


def _array(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


# ------------------------------------------------------------------ per-unit values
def win_values(results: Sequence[UnitResult], method: str, protocol: str = proto.DEBIASED) -> np.ndarray:
    out = []
    for r in results:
        if protocol == proto.PAPER:
            paper = r.paper
            if paper is None or not paper.usable or method not in paper.candidates:
                out.append(NAN)
            else:
                out.append(1.0 if paper.top == method else 0.0)
            continue
        rank = r.ranking
        if rank is None or not rank.usable or method not in rank.candidates:
            out.append(NAN)
        else:
            out.append(1.0 / len(rank.winners) if method in rank.winners else 0.0)
    return _array(out)


def _paper_above_original(r: UnitResult, method: str) -> float:
    paper = r.paper
    if paper is None:
        return NAN
    mine, original = paper.position(method), paper.position(m.ORIGINAL)
    if mine is None or original is None:
        return NAN
    return 1.0 if mine < original else 0.0


def _pair_values(results: Sequence[UnitResult], method: str, what: str) -> np.ndarray:
    out = []
    for r in results:
        pair = r.pairs.get(method)
        if pair is None or not pair.usable:
            out.append(NAN)
        elif what == "won":  # the pair is (original, method): the method wins when b is preferred
            out.append(1.0 if pair.outcome == "b" else 0.0)
        elif what == "tie":
            out.append(1.0 if pair.outcome == "tie" else 0.0)
        elif what == "lost":
            out.append(1.0 if pair.outcome == "a" else 0.0)
        else:  # "probability": P(method preferred), averaged over both orders
            out.append(1.0 - pair.probability_a)
    return _array(out)


def preference_values(
    results: Sequence[UnitResult], method: str, protocol: str = proto.DEBIASED
) -> np.ndarray:
    if protocol == proto.PAPER:
        return _array([_paper_above_original(r, method) for r in results])
    return _pair_values(results, method, "won")


def preference_probabilities(
    results: Sequence[UnitResult], method: str, protocol: str = proto.DEBIASED
) -> np.ndarray:
    """Per unit, how strongly the method is preferred over the original: the corrected probability
    (debiased) or the 0/1 outcome of the ranking (paper, which has no probabilities)."""
    if protocol == proto.PAPER:
        return preference_values(results, method, protocol)
    return _pair_values(results, method, "probability")


def likert_values(results: Sequence[UnitResult], method: str, protocol: str = proto.DEBIASED) -> np.ndarray:
    out = []
    for r in results:
        rating = r.likert.get(method)
        if rating is None or not rating.usable:
            out.append(NAN)
        else:
            out.append(rating.answered if protocol == proto.PAPER else rating.score)
    return _array(out)


def similarity_values(results: Sequence[UnitResult], method: str) -> np.ndarray:
    return _array([r.similarity.get(method, NAN) for r in results])


def _count(values: np.ndarray) -> int:
    return int(np.nansum(values))


# ------------------------------------------------------------------ Table 2
def method_metrics(
    results: Sequence[UnitResult],
    methods: Sequence[str],
    settings: JudgeSettings,
    group: str,
    protocol: str = proto.DEBIASED,
) -> dict[str, dict[str, Any]]:
    """Table 2 for ``results`` (one group of units) under ``protocol``."""
    idx = resample_indices(len(results), settings.bootstrap_samples, seed_for(settings.seed, group))
    conf = settings.confidence
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        entry: dict[str, Any] = {
            "display": m.display_name(method),
            "kind": m.kind_of(method, settings.extra_methods),
        }
        win = win_values(results, method, protocol)
        entry["top1_win_rate"] = estimate(win, idx, conf, 100.0).to_dict()
        if method == m.ORIGINAL:
            entry["preference_gain"] = None
            entry["similarity"] = None
        else:
            won = preference_values(results, method, protocol)
            gain = estimate(won, idx, conf, 100.0).to_dict()
            if protocol == proto.PAPER:  # a ranking has no ties
                gain.update(wins=_count(won), ties=0, losses=_count(1.0 - won), mean_probability=None)
            else:
                gain.update(
                    wins=_count(won),
                    ties=_count(_pair_values(results, method, "tie")),
                    losses=_count(_pair_values(results, method, "lost")),
                    mean_probability=estimate(preference_probabilities(results, method), idx, conf).to_dict()[
                        "value"
                    ],
                )
            entry["preference_gain"] = gain
            entry["similarity"] = estimate(similarity_values(results, method), idx, conf).to_dict()
        entry["interestingness"] = estimate(likert_values(results, method, protocol), idx, conf).to_dict()
        out[method] = entry
    return out


# ------------------------------------------------------------------ position bias
def _share(values: list[float], idx: np.ndarray, conf: float) -> dict[str, Any]:
    return estimate(_array(values), idx, conf, 100.0).to_dict()


def _modal_slots(picks_by_slots: dict[int, Counter[int]]) -> dict[int, int]:
    return {n: c.most_common(1)[0][0] for n, c in picks_by_slots.items() if c}


def _slot_shares(
    per_unit: list[tuple[int, list[int]] | None], idx: np.ndarray, conf: float
) -> dict[str, Any]:
    """Per unit (number of slots, picked slots): the share of picks on the first slot and on the slot
    picked most often overall (per number of slots), with chance 1/slots."""
    counts: dict[int, Counter[int]] = {}
    for item in per_unit:
        if item is not None:
            counts.setdefault(item[0], Counter()).update(item[1])
    modal = _modal_slots(counts)
    first, most, chance = [], [], []
    for item in per_unit:
        if item is None or not item[1]:
            first.append(NAN)
            most.append(NAN)
            chance.append(NAN)
            continue
        n, picks = item
        first.append(sum(1 for p in picks if p == 0) / len(picks))
        most.append(sum(1 for p in picks if p == modal[n]) / len(picks))
        chance.append(1.0 / n)
    chance_arr = _array(chance)
    return {
        "picks": sum(len(item[1]) for item in per_unit if item is not None),
        "first_slot_rate": _share(first, idx, conf),
        "most_picked_slot_rate": _share(most, idx, conf),
        "most_picked_slot": {str(n): chr(ord("A") + s) for n, s in sorted(modal.items())},
        "chance_rate": None
        if np.all(np.isnan(chance_arr))
        else round(float(np.nanmean(chance_arr)) * 100.0, 4),
    }


def paper_position_bias(results: Sequence[UnitResult], settings: JudgeSettings) -> dict[str, Any]:
    idx = resample_indices(len(results), settings.bootstrap_samples, seed_for(settings.seed, "bias:paper"))
    per_unit: list[tuple[int, list[int]] | None] = []
    asked = unusable = 0
    methods: Counter[str] = Counter()
    for r in results:
        paper = r.paper
        if paper is None:
            per_unit.append(None)
            continue
        asked += 1
        if not paper.usable:
            unusable += 1
            per_unit.append(None)
            continue
        methods[paper.method] += 1
        slot = paper.top_slot
        per_unit.append((len(paper.shown), [] if slot is None else [slot]))
    return {
        "rankings": asked,
        "unusable_rankings": unusable,
        "read_by": dict(methods),
        "top_pick": _slot_shares(per_unit, idx, settings.confidence),
    }


def _best_slot(probabilities: tuple[float, ...]) -> int:
    return max(range(len(probabilities)), key=probabilities.__getitem__)


def debiased_position_bias(
    results: Sequence[UnitResult], settings: JudgeSettings, priors: dict[str, Any]
) -> dict[str, Any]:
    idx = resample_indices(len(results), settings.bootstrap_samples, seed_for(settings.seed, "bias:debiased"))
    conf = settings.confidence
    before: list[tuple[int, list[int]] | None] = []
    after: list[tuple[int, list[int]] | None] = []
    agreement: list[float] = []
    balanced = orders = 0
    for r in results:
        rank = r.ranking
        if rank is None or not rank.usable:
            before.append(None)
            after.append(None)
            agreement.append(NAN)
            continue
        n = len(rank.candidates)
        before.append((n, rank.raw_picks))
        after.append((n, rank.picks))
        agreement.append(rank.order_agreement)
        balanced += int(rank.balanced)
        orders = max(orders, rank.orders_asked)
    ranked_units = sum(1 for b in before if b is not None)

    pair_bias: dict[str, list[float]] = {"before": [], "after": [], "a_before": [], "a_after": []}
    agree: list[float] = []
    pairs = ties = 0
    for r in results:
        usable = [p for p in r.pairs.values() if p.usable]
        pairs += len(usable)
        ties += sum(1 for p in usable if p.outcome == "tie")
        if not usable:
            for values in pair_bias.values():
                values.append(NAN)
            agree.append(NAN)
            continue
        pair_bias["before"].append(float(np.mean([p.raw_position_biased for p in usable])))
        pair_bias["after"].append(float(np.mean([p.position_biased for p in usable])))
        # share of the 2 x pairs answers that picked slot A, before and after the correction
        raw_a = [a.best_index == 0 for p in usable for a in p.answers]
        corrected_a = [
            _best_slot(corrected_probabilities(a, p.prior)) == 0 for p in usable for a in p.answers
        ]
        pair_bias["a_before"].append(float(np.mean(raw_a)) if raw_a else NAN)
        pair_bias["a_after"].append(float(np.mean(corrected_a)) if corrected_a else NAN)
        agree.append(float(np.mean([p.orders_agree for p in usable])))
    return {
        "ranking": {
            "units": ranked_units,
            "orders_per_unit": orders,
            "balanced_units": balanced,
            "order_agreement": _share(agreement, idx, conf),
            "before": _slot_shares(before, idx, conf),
            "after": _slot_shares(after, idx, conf),
            "prior": priors.get("ranking"),
        },
        "pairwise": {
            "pairs": pairs,
            "ties": ties,
            "position_bias_rate": {
                "before": _share(pair_bias["before"], idx, conf),
                "after": _share(pair_bias["after"], idx, conf),
            },
            "first_slot_rate": {
                "before": _share(pair_bias["a_before"], idx, conf),
                "after": _share(pair_bias["a_after"], idx, conf),
                "chance_rate": 50.0,
            },
            "order_agreement": _share(agree, idx, conf),
            "prior": priors.get("pairwise"),
        },
    }


# ------------------------------------------------------------------ protocol agreement
def _kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    from scipy.stats import kendalltau

    common = [c for c in a if c in b]
    if len(common) < 2:
        return NAN
    tau = kendalltau([a.index(c) for c in common], [b.index(c) for c in common]).statistic
    return float(tau) if tau is not None and not math.isnan(tau) else NAN


def agreement(results: Sequence[UnitResult], settings: JudgeSettings) -> dict[str, Any]:
    """Per unit judged under both protocols: whether their top-1 picks are the same, and the Kendall tau
    between the paper ranking and the debiased ranking (sorted by corrected first-place probability)."""
    idx = resample_indices(len(results), settings.bootstrap_samples, seed_for(settings.seed, "agreement"))
    same, taus = [], []
    for r in results:
        paper, rank = r.paper, r.ranking
        if paper is None or rank is None or not paper.usable or not rank.usable:
            same.append(NAN)
            taus.append(NAN)
            continue
        # an exact tie for the debiased winner counts as agreeing when the paper's pick is among the tied
        same.append(1.0 if paper.top in rank.winners else 0.0)
        taus.append(_kendall_tau(paper.ranking, rank.ranking))
    return {
        "units": int(np.sum(~np.isnan(_array(same)))),
        "same_top1": _share(same, idx, settings.confidence),
        "kendall_tau": estimate(_array(taus), idx, settings.confidence).to_dict(),
    }


# ------------------------------------------------------------------ ablations
def ablation_tests(
    results: Sequence[UnitResult],
    methods: Sequence[str],
    settings: JudgeSettings,
    protocol: str = proto.DEBIASED,
) -> dict[str, Any]:
    """Each ablation vs the reference method on the units where both were judged (Table 5)."""
    reference = settings.ablation_reference
    ablations = [k for k in methods if m.kind_of(k, settings.extra_methods) == "ablation" and k != reference]
    out: dict[str, Any] = {
        "protocol": protocol,
        "reference": reference,
        "reference_display": m.display_name(reference),
        "tests": [],
    }
    if not ablations:
        return out
    if reference not in methods:
        out["note"] = f"reference method {reference!r} has no outputs; ablations cannot be tested"
        return out
    ref_won = preference_values(results, reference, protocol)
    ref_prob = preference_probabilities(results, reference, protocol)
    for method in ablations:
        won = preference_values(results, method, protocol)
        prob = preference_probabilities(results, method, protocol)
        paired = ~(np.isnan(ref_won) | np.isnan(won))
        n = int(paired.sum())
        if n == 0 and protocol == proto.PAPER:
            out.setdefault(
                "note",
                "ablation variants are not in the paper ranking (judge.rank_ablations = false), so the paper "
                "protocol has no preference gain for them",
            )
            continue
        idx = resample_indices(n, settings.bootstrap_samples, seed_for(settings.seed, "ablation", method))
        delta = estimate(won[paired] - ref_won[paired], idx, settings.confidence, 100.0)
        test = paired_wilcoxon(ref_prob[paired], prob[paired])
        out["tests"].append(
            {
                "method": method,
                "display": m.display_name(method),
                "n_pairs": n,
                "reference_gain": _mean_pct(ref_won[paired]),
                "preference_gain": _mean_pct(won[paired]),
                "delta": delta.to_dict(),
                "wilcoxon": {
                    "statistic": test.statistic,
                    "p_value": None if test.p_value is None else round(test.p_value, 6),
                    "n_nonzero": test.n_nonzero,
                    "stars": test.stars,
                    "on": "per-unit outcome: ranked above the original (0/1)"
                    if protocol == proto.PAPER
                    else "per-unit probability of preferring the method's output over the original",
                },
            }
        )
    return out


def _mean_pct(values: np.ndarray) -> float | None:
    return None if values.size == 0 else round(float(values.mean()) * 100.0, 4)


# ------------------------------------------------------------------ groups
def _groups(
    results: Sequence[UnitResult], key: Callable[[UnitResult], str], order: Sequence[str] = ()
) -> dict[str, list[UnitResult]]:
    """Units by ``key``; groups named in ``order`` first in that order, the rest by size."""
    out: dict[str, list[UnitResult]] = {}
    for r in results:
        out.setdefault(key(r), []).append(r)
    rank = {name: i for i, name in enumerate(order)}
    return dict(sorted(out.items(), key=lambda kv: (rank.get(kv[0], len(rank)), -len(kv[1]), kv[0])))


_SIDES = ("fiction", "non-fiction", "unknown")


def protocol_metrics(
    results: Sequence[UnitResult], methods: Sequence[str], settings: JudgeSettings, protocol: str
) -> dict[str, Any]:
    """Every breakdown of Table 2 under one protocol."""

    def by(key: Callable[[UnitResult], str], name: str, order: Sequence[str] = ()) -> dict[str, Any]:
        return {
            value: {
                "units": len(rs),
                "methods": method_metrics(rs, methods, settings, f"{name}:{value}", protocol),
            }
            for value, rs in _groups(results, key, order).items()
        }

    return {
        "overall": method_metrics(results, methods, settings, "overall", protocol),
        "by_country": by(lambda r: r.unit.country, "country"),
        "by_genre_group": by(lambda r: r.unit.genre_group, "genre"),
        "by_genre_cluster": by(
            lambda r: r.unit.genre_cluster, "cluster", (*genres.cluster_names(), genres.OTHER)
        ),
        "by_fiction": by(lambda r: r.unit.fiction_side, "side", _SIDES),
    }


def aggregate(run: EvaluationRun, settings: JudgeSettings) -> dict[str, Any]:
    """The metrics part of report.json, per protocol run."""
    methods = [m.ORIGINAL, *run.evalset.methods]
    priors = run.priors.to_dict()
    by_protocol = {p: protocol_metrics(run.results, methods, settings, p) for p in run.protocols}
    ablations = {p: ablation_tests(run.results, methods, settings, p) for p in run.protocols}
    bias: dict[str, Any] = {}
    if proto.PAPER in run.protocols:
        bias[proto.PAPER] = paper_position_bias(run.results, settings)
    if proto.DEBIASED in run.protocols:
        bias[proto.DEBIASED] = debiased_position_bias(run.results, settings, priors)
    return {
        "by_protocol": by_protocol,
        "ablations": ablations,
        "position_bias": bias,
        "agreement": agreement(run.results, settings) if len(run.protocols) > 1 else None,
    }


__all__ = ["Estimate", "aggregate", "method_metrics"]
