"""The study's results (paper §4.2 "User evaluations", Table 4, D.4), from the raw answers.

Per ranking screen (one participant x one book), as the paper reads a ranking:
  top-1 win rate   1 for the method the participant ranked first, else 0
  preference gain  1 when the method is ranked above the original, else 0 (not defined for the original)
  interestingness  the participant's 1-5 rating
Means with percentile bootstrap intervals over screens come from the judge's statistics code
(``gravity_judge.stats``: the same resampling the LLM-judge report uses), overall and per country.

Value inference accuracy (D.4, "84%"): per participant, the share of the five verified inferences they
agreed with; the mean over participants with a bootstrap over participants, overall and per country.

Judge-participant agreement: the LLM judge ranks the same descriptions with the participant's persona; per
screen, whether its top-1 is the participant's and Kendall's tau between the two rankings; and the judge's
own Table 4 on the same screens, so the two can be read side by side.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gravity_judge.methods import ORIGINAL, display_name
from gravity_judge.stats import estimate, resample_indices, seed_for

NAN = math.nan


@dataclass(frozen=True)
class RankedScreen:
    """One answered screen: ranks (1 = best) and 1-5 ratings per method, and who answered it."""

    participant: str
    country: str
    parent_asin: str
    ranks: dict[str, int]
    ratings: dict[str, float]
    simulated: bool = False
    # The LLM judge's ranking (best first) and ratings of the same descriptions, when judged.
    judge_ranking: tuple[str, ...] = ()
    judge_ratings: dict[str, float] = field(default_factory=dict)

    @property
    def winner(self) -> str:
        return min(self.ranks, key=lambda m: self.ranks[m])

    @property
    def judged(self) -> bool:
        return bool(self.judge_ranking)


@dataclass(frozen=True)
class Verification:
    participant: str
    country: str
    # One bool per verified statement: did the participant agree with the inferred label?
    agreed: tuple[bool, ...]
    simulated: bool = False


def _ranks_from_order(order: Sequence[str]) -> dict[str, int]:
    return {m: i + 1 for i, m in enumerate(order)}


def win_values(screens: Sequence[RankedScreen], method: str, judge: bool = False) -> np.ndarray:
    out = []
    for s in screens:
        ranks = _ranks_from_order(s.judge_ranking) if judge else s.ranks
        if not ranks or method not in ranks:
            out.append(NAN)
        else:
            out.append(1.0 if min(ranks, key=lambda m: ranks[m]) == method else 0.0)
    return np.asarray(out, dtype=np.float64)


def gain_values(screens: Sequence[RankedScreen], method: str, judge: bool = False) -> np.ndarray:
    out = []
    for s in screens:
        ranks = _ranks_from_order(s.judge_ranking) if judge else s.ranks
        if not ranks or method not in ranks or ORIGINAL not in ranks:
            out.append(NAN)
        else:
            out.append(1.0 if ranks[method] < ranks[ORIGINAL] else 0.0)
    return np.asarray(out, dtype=np.float64)


def rating_values(screens: Sequence[RankedScreen], method: str, judge: bool = False) -> np.ndarray:
    source = (lambda s: s.judge_ratings) if judge else (lambda s: s.ratings)
    return np.asarray([source(s).get(method, NAN) for s in screens], dtype=np.float64)


def table4(
    screens: Sequence[RankedScreen],
    methods: Sequence[str],
    samples: int,
    confidence: float,
    seed: int,
    group: str,
    judge: bool = False,
) -> dict[str, dict[str, Any]]:
    """Table 4 for ``screens``: per method, top-1 win rate %, preference gain %, interestingness (1-5)."""
    idx = resample_indices(
        len(screens), samples, seed_for(seed, "study", group, "judge" if judge else "people")
    )
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        out[method] = {
            "display": display_name(method),
            "top1_win_rate": estimate(win_values(screens, method, judge), idx, confidence, 100.0).to_dict(),
            "preference_gain": None
            if method == ORIGINAL
            else estimate(gain_values(screens, method, judge), idx, confidence, 100.0).to_dict(),
            "interestingness": estimate(rating_values(screens, method, judge), idx, confidence).to_dict(),
        }
    return out


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float:
    """Kendall's tau between two complete rankings of the same items (best first); NaN for fewer than 2."""
    items = [x for x in a if x in set(b)]
    pos_a = {m: i for i, m in enumerate(a)}
    pos_b = {m: i for i, m in enumerate(b)}
    pairs = concordant = 0
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            x, y = items[i], items[j]
            pairs += 1
            concordant += 1 if (pos_a[x] - pos_a[y]) * (pos_b[x] - pos_b[y]) > 0 else -1
    return concordant / pairs if pairs else NAN


def agreement(
    screens: Sequence[RankedScreen], samples: int, confidence: float, seed: int, group: str
) -> dict[str, Any]:
    judged = [s for s in screens if s.judged]
    idx = resample_indices(len(judged), samples, seed_for(seed, "study-agreement", group))
    same_top = np.asarray([1.0 if s.judge_ranking[0] == s.winner else 0.0 for s in judged], dtype=np.float64)
    people_order = [sorted(s.ranks, key=lambda m: s.ranks[m]) for s in judged]
    taus = np.asarray(
        [kendall_tau(order, s.judge_ranking) for order, s in zip(people_order, judged, strict=True)],
        dtype=np.float64,
    )
    chance = np.asarray([1.0 / len(s.ranks) for s in judged], dtype=np.float64)
    return {
        "screens": len(judged),
        "identical_top1": estimate(same_top, idx, confidence, 100.0).to_dict(),
        "chance_identical_top1": round(float(chance.mean()) * 100.0, 4) if judged else None,
        "kendall_tau": estimate(taus, idx, confidence).to_dict(),
    }


def inference_accuracy(
    verifications: Sequence[Verification], samples: int, confidence: float, seed: int, group: str
) -> dict[str, Any]:
    done = [v for v in verifications if v.agreed]
    idx = resample_indices(len(done), samples, seed_for(seed, "study-inference", group))
    values = np.asarray([sum(v.agreed) / len(v.agreed) for v in done], dtype=np.float64)
    return {
        "participants": len(done),
        "statements": sum(len(v.agreed) for v in done),
        "accuracy": estimate(values, idx, confidence, 100.0).to_dict(),
    }


def _by_country(items: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        out.setdefault(item.country or "unknown", []).append(item)
    return dict(sorted(out.items()))


def compute(
    screens: Sequence[RankedScreen],
    verifications: Sequence[Verification],
    methods: Sequence[str],
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 13,
    judge_model: str = "",
) -> dict[str, Any]:
    """Everything the results page and the exports show."""
    ordered = [ORIGINAL, *[m for m in methods if m != ORIGINAL]]

    def block(group: str, scr: Sequence[RankedScreen], ver: Sequence[Verification]) -> dict[str, Any]:
        judged = [s for s in scr if s.judged]
        return {
            "screens": len(scr),
            "participants": len({s.participant for s in scr}),
            "table4": table4(scr, ordered, samples, confidence, seed, group),
            "judge_table4": table4(judged, ordered, samples, confidence, seed, group, judge=True)
            if judged
            else None,
            "agreement": agreement(scr, samples, confidence, seed, group),
            "inference": inference_accuracy(ver, samples, confidence, seed, group),
        }

    countries = sorted(
        {s.country or "unknown" for s in screens} | {v.country or "unknown" for v in verifications}
    )
    scr_by, ver_by = _by_country(screens), _by_country(verifications)
    return {
        "methods": ordered,
        "bootstrap": {"samples": samples, "confidence": confidence, "seed": seed, "unit": "screen"},
        "judge_model": judge_model,
        "simulated_participants": sorted(
            {s.participant for s in screens if s.simulated}
            | {v.participant for v in verifications if v.simulated}
        ),
        "overall": block("overall", screens, verifications),
        "by_country": {c: block(f"country:{c}", scr_by.get(c, []), ver_by.get(c, [])) for c in countries},
    }


# ------------------------------------------------------------------ exports
CSV_HEADERS = ("group", "section", "method", "metric", "value", "ci_low", "ci_high", "n")


def rows(results: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The results as long-format rows (group, section, method, metric, value, ci_low, ci_high, n)."""
    out: list[tuple[Any, ...]] = []
    groups = [("overall", results["overall"])] + [
        (f"country:{c}", b) for c, b in results["by_country"].items()
    ]
    for group, b in groups:
        for section in ("table4", "judge_table4"):
            for method, entry in (b.get(section) or {}).items():
                for metric in ("top1_win_rate", "preference_gain", "interestingness"):
                    e = entry[metric]
                    if e is not None:
                        out.append(
                            (group, section, method, metric, e["value"], e["ci_low"], e["ci_high"], e["n"])
                        )
        for metric in ("identical_top1", "kendall_tau"):
            e = b["agreement"][metric]
            out.append((group, "agreement", "", metric, e["value"], e["ci_low"], e["ci_high"], e["n"]))
        e = b["inference"]["accuracy"]
        out.append((group, "inference", "", "accuracy", e["value"], e["ci_low"], e["ci_high"], e["n"]))
    return out


def to_csv(results: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADERS)
    for row in rows(results):
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue()
