"""Per-unit outcomes -> the paper's aggregates: Table 2 per method, per country (Tables 14-17), per genre
group (Figure 3), ablations with paired Wilcoxon tests (Table 5), and the judge's reliability figures.

Every rate is a mean over (user, book) units with a bootstrap interval from resampling units. Per unit:
  win rate        1 when the method won the top-1 ranking (1/k when k candidates tie exactly), else 0
  preference gain 1 when the method's output was preferred over the original (averaged over both
                  orders, probability > 0.5), else 0 (ties count as not preferred and are reported)
  interestingness the expected 1-5 Likert score
  similarity      MiniLM cosine to the original x 100
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gravity_judge import methods as m
from gravity_judge.evaluate import EvaluationRun, UnitResult
from gravity_judge.settings import JudgeSettings
from gravity_judge.stats import Estimate, estimate, paired_wilcoxon, resample_indices, seed_for

NAN = math.nan


def _array(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def win_values(results: Sequence[UnitResult], method: str) -> np.ndarray:
    out = []
    for r in results:
        rank = r.ranking
        if rank is None or not rank.usable or method not in rank.candidates:
            out.append(NAN)
        else:
            out.append(1.0 / len(rank.winners) if method in rank.winners else 0.0)
    return _array(out)


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


def preference_values(results: Sequence[UnitResult], method: str) -> np.ndarray:
    return _pair_values(results, method, "won")


def preference_probabilities(results: Sequence[UnitResult], method: str) -> np.ndarray:
    return _pair_values(results, method, "probability")


def likert_values(results: Sequence[UnitResult], method: str) -> np.ndarray:
    out = []
    for r in results:
        rating = r.likert.get(method)
        out.append(rating.score if rating is not None and rating.usable else NAN)
    return _array(out)


def similarity_values(results: Sequence[UnitResult], method: str) -> np.ndarray:
    return _array([r.similarity.get(method, NAN) for r in results])


def _count(values: np.ndarray) -> int:
    return int(np.nansum(values))


def method_metrics(
    results: Sequence[UnitResult],
    methods: Sequence[str],
    settings: JudgeSettings,
    group: str,
) -> dict[str, dict[str, Any]]:
    """Table 2 for ``results`` (one group of units)."""
    idx = resample_indices(len(results), settings.bootstrap_samples, seed_for(settings.seed, group))
    conf = settings.confidence
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        entry: dict[str, Any] = {
            "display": m.display_name(method),
            "kind": m.kind_of(method, settings.extra_methods),
        }
        win = win_values(results, method)
        entry["top1_win_rate"] = estimate(win, idx, conf, 100.0).to_dict()
        if method == m.ORIGINAL:
            entry["preference_gain"] = None
            entry["similarity"] = None
        else:
            won = preference_values(results, method)
            gain = estimate(won, idx, conf, 100.0).to_dict()
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
        entry["interestingness"] = estimate(likert_values(results, method), idx, conf).to_dict()
        out[method] = entry
    return out


def reliability(results: Sequence[UnitResult], settings: JudgeSettings) -> dict[str, Any]:
    """How far the judge's answers depend on where a description is shown (per-unit rates, bootstrapped)."""
    idx = resample_indices(len(results), settings.bootstrap_samples, seed_for(settings.seed, "reliability"))
    conf = settings.confidence
    biased, agree, ties, pairs = [], [], 0, 0
    for r in results:
        usable = [p for p in r.pairs.values() if p.usable]
        pairs += len(usable)
        ties += sum(1 for p in usable if p.outcome == "tie")
        biased.append(float(np.mean([p.position_biased for p in usable])) if usable else NAN)
        agree.append(float(np.mean([p.orders_agree for p in usable])) if usable else NAN)
    ranked = [r.ranking for r in results if r.ranking is not None and r.ranking.usable]
    order_agreement, first_position, chance = [], [], []
    for r in results:
        rank = r.ranking
        if rank is None or not rank.usable:
            order_agreement.append(NAN)
            first_position.append(NAN)
            chance.append(NAN)
        else:
            order_agreement.append(rank.order_agreement)
            first_position.append(rank.first_position_picks / rank.orders_used)
            chance.append(1.0 / len(rank.candidates))
    chance_arr = _array(chance)
    return {
        "pairwise": {
            "pairs": pairs,
            "ties": ties,
            "position_bias_rate": estimate(_array(biased), idx, conf, 100.0).to_dict(),
            "order_agreement": estimate(_array(agree), idx, conf, 100.0).to_dict(),
        },
        "ranking": {
            "units": len(ranked),
            "orders_per_unit": settings.orders,
            "order_agreement": estimate(_array(order_agreement), idx, conf, 100.0).to_dict(),
            "first_position_rate": estimate(_array(first_position), idx, conf, 100.0).to_dict(),
            "chance_first_position_rate": None
            if np.all(np.isnan(chance_arr))
            else round(float(np.nanmean(chance_arr)) * 100.0, 4),
        },
    }


def ablation_tests(
    results: Sequence[UnitResult], methods: Sequence[str], settings: JudgeSettings
) -> dict[str, Any]:
    """Each ablation vs the reference method on the units where both were judged (Table 5)."""
    reference = settings.ablation_reference
    ablations = [k for k in methods if m.kind_of(k, settings.extra_methods) == "ablation" and k != reference]
    out: dict[str, Any] = {
        "reference": reference,
        "reference_display": m.display_name(reference),
        "tests": [],
    }
    if not ablations:
        return out
    if reference not in methods:
        out["note"] = f"reference method {reference!r} has no outputs; ablations cannot be tested"
        return out
    ref_won = preference_values(results, reference)
    ref_prob = preference_probabilities(results, reference)
    for method in ablations:
        won = preference_values(results, method)
        prob = preference_probabilities(results, method)
        paired = ~(np.isnan(ref_won) | np.isnan(won))
        n = int(paired.sum())
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
                    "on": "per-unit probability of preferring the method's output over the original",
                },
            }
        )
    return out


def _mean_pct(values: np.ndarray) -> float | None:
    return None if values.size == 0 else round(float(values.mean()) * 100.0, 4)


def _groups(results: Sequence[UnitResult], key: str) -> dict[str, list[UnitResult]]:
    out: dict[str, list[UnitResult]] = {}
    for r in results:
        out.setdefault(getattr(r.unit, key), []).append(r)
    return dict(sorted(out.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def aggregate(run: EvaluationRun, settings: JudgeSettings) -> dict[str, Any]:
    """The metrics part of report.json."""
    methods = [m.ORIGINAL, *run.evalset.methods]
    overall = method_metrics(run.results, methods, settings, "overall")
    by_country = {
        country: {"units": len(rs), "methods": method_metrics(rs, methods, settings, f"country:{country}")}
        for country, rs in _groups(run.results, "country").items()
    }
    by_genre = {
        genre: {"units": len(rs), "methods": method_metrics(rs, methods, settings, f"genre:{genre}")}
        for genre, rs in _groups(run.results, "genre_group").items()
    }
    return {
        "overall": overall,
        "by_country": by_country,
        "by_genre_group": by_genre,
        "ablations": ablation_tests(run.results, methods, settings),
        "reliability": reliability(run.results, settings),
    }


__all__ = ["Estimate", "aggregate", "method_metrics"]
