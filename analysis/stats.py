"""The statistics of a verdict, for the few seeds a training budget allows.

Each config is re-trained with N seeds; its N test accuracies are a sample. Between two configs:
Welch's t (unequal variances, no pooling across configs) for the accuracy difference, its interval
and p-value; a bootstrap (seeds resampled within each config) for the error reduction, a ratio with
no usable closed form; a one-sided Welch bound for "not worse by more than X" (non-inferiority); and
the t-test's power curve for how many seeds a difference of the observed size would need.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
BOOTSTRAP_SAMPLES = 10_000
MAX_SEEDS = 100_000


@dataclass(frozen=True)
class Sample:
    """A config's replicate values: mean, sd and a 95 % t interval (None for fewer than 2 values)."""

    n: int
    mean: float
    sd: float
    ci: tuple[float, float] | None


def describe(values: Sequence[float], alpha: float = ALPHA) -> Sample:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Sample(0, math.nan, math.nan, None)
    mean = float(x.mean())
    if x.size < 2:
        return Sample(1, mean, math.nan, None)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - alpha / 2, x.size - 1)) * sd / math.sqrt(x.size)
    return Sample(int(x.size), mean, sd, (mean - half, mean + half))


@dataclass(frozen=True)
class Difference:
    """a - b with Welch's interval and two-sided p-value."""

    diff: float
    ci: tuple[float, float]
    p_value: float
    se: float
    df: float

    def lower_bound(self, alpha: float = ALPHA) -> float:
        """One-sided (1 - alpha) lower confidence bound of a - b."""
        if self.se == 0:
            return self.diff
        return self.diff - float(stats.t.ppf(1 - alpha, self.df)) * self.se


def welch(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Difference:
    """Welch's two-sample t on the means; both samples need at least 2 values."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError("Welch's t needs at least 2 values per sample")
    diff = float(x.mean() - y.mean())
    va, vb = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    se = math.sqrt(va + vb)
    if se == 0:  # every seed scored the same on both sides: no spread to test against
        return Difference(diff, (diff, diff), 1.0 if diff == 0 else 0.0, 0.0, math.inf)
    df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Difference(diff, (diff - half, diff + half), p, se, df)


def error_reduction(dendritic: Sequence[float], baseline: Sequence[float], alpha: float = ALPHA,
                    samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float | None, tuple[float, float] | None]:
    """(err_b - err_d) / err_b on mean accuracies, with a percentile bootstrap interval (seeds resampled
    within each config). None where the baseline makes no errors."""
    d, b = np.asarray(dendritic, dtype=float), np.asarray(baseline, dtype=float)
    err_b = 1 - b.mean()
    if d.size == 0 or err_b <= 0:
        return None, None
    point = float((err_b - (1 - d.mean())) / err_b)
    rng = np.random.default_rng(seed)
    boot_d = d[rng.integers(0, d.size, (samples, d.size))].mean(axis=1)
    boot_b = b[rng.integers(0, b.size, (samples, b.size))].mean(axis=1)
    errors = 1 - boot_b
    ok = errors > 0
    ratios = (errors[ok] - (1 - boot_d[ok])) / errors[ok]
    low, high = np.quantile(ratios, [alpha / 2, 1 - alpha / 2])
    return point, (float(low), float(high))


def seeds_to_resolve(diff: float, sd_a: float, sd_b: float, alpha: float = ALPHA, power: float = POWER) -> int | None:
    """Seeds per config a two-sided t-test needs to detect `diff` with `power` (equal seeds, the observed
    spread); None when the difference is zero or there is no spread to measure it against."""
    spread = math.sqrt((sd_a ** 2 + sd_b ** 2) / 2)
    if not math.isfinite(spread) or spread == 0 or diff == 0 or not math.isfinite(diff):
        return None
    effect = abs(diff) / spread

    def power_at(n: int) -> float:
        df, shift = 2 * n - 2, effect * math.sqrt(n / 2)
        critical = float(stats.t.ppf(1 - alpha / 2, df))
        value = float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))
        return value if math.isfinite(value) else float(stats.norm.sf(critical - shift))  # large n: normal

    high = 2
    while power_at(high) < power:  # power grows with n: double, then bisect to the smallest n that reaches it
        if high >= MAX_SEEDS:
            return None
        high *= 2
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        if power_at(middle) >= power:
            high = middle
        else:
            low = middle + 1
    return low
