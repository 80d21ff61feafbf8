"""Statistics for the report: bootstrap confidence intervals over (user, book) units and paired Wilcoxon
signed-rank tests with the paper's significance stars (Table 5: * p < 0.05, ** p < 0.01)."""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean over units with its bootstrap interval; ``value`` is None when no unit had a value."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "value": _round(self.value),
            "ci_low": _round(self.low),
            "ci_high": _round(self.high),
            "n": self.n,
        }


def _round(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


def seed_for(seed: int, *parts: str) -> int:
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def resample_indices(n: int, samples: int, seed: int) -> np.ndarray:
    """(samples, n) unit indices drawn with replacement; shared by every metric of a group so the
    intervals of one group come from the same resamples."""
    if n == 0 or samples == 0:
        return np.zeros((0, n), dtype=np.int64)
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def estimate(
    values: np.ndarray, indices: np.ndarray, confidence: float = 0.95, scale: float = 1.0
) -> Estimate:
    """Mean of the non-NaN ``values`` (one per unit) and its percentile bootstrap interval."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    n = int(valid.sum())
    if n == 0:
        return Estimate(None, None, None, 0)
    point = float(values[valid].mean()) * scale
    if indices.shape[0] == 0:
        return Estimate(point, None, None, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # resamples that drew only NaN units
        means = np.nanmean(values[indices], axis=1)
    means = means[~np.isnan(means)]
    if means.size == 0:
        return Estimate(point, None, None, n)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Estimate(point, float(low) * scale, float(high) * scale, n)


@dataclass(frozen=True)
class WilcoxonResult:
    n: int
    # Pairs whose difference is not zero (the ones the signed-rank test uses).
    n_nonzero: int
    statistic: float | None
    p_value: float | None

    @property
    def stars(self) -> str:
        return stars(self.p_value)


def stars(p_value: float | None) -> str:
    if p_value is None or math.isnan(p_value):
        return ""
    if p_value < 0.01:
        return "**"
    if p_value < 0.05:
        return "*"
    return ""


def paired_wilcoxon(reference: np.ndarray, other: np.ndarray) -> WilcoxonResult:
    """Two-sided paired Wilcoxon signed-rank test of ``reference`` vs ``other`` (pairs with a NaN are dropped;
    zero differences are dropped as in Wilcoxon's original method). No non-zero difference means p = 1."""
    from scipy.stats import wilcoxon

    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(other, dtype=np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = int(x.size)
    diff = x - y
    nonzero = int(np.count_nonzero(np.abs(diff) > 1e-12))
    if n == 0:
        return WilcoxonResult(0, 0, None, None)
    if nonzero == 0:
        return WilcoxonResult(n, 0, 0.0, 1.0)
    # Differences within float noise of zero count as ties, so identical judgments never reach the ranks.
    diff = np.where(np.abs(diff) > 1e-12, diff, 0.0)
    result = wilcoxon(diff, zero_method="wilcox", alternative="two-sided")
    return WilcoxonResult(n, nonzero, float(result.statistic), float(result.pvalue))
