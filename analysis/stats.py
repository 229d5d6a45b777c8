"""The statistics of a verdict, for the few seeds a training budget allows, calibrated by simulation.

Each config is re-trained with N seeds, every seed scored on the same held-out examples, so an accuracy
carries two kinds of noise: the seeds' (weight init, batch order) and the examples' (the test split is one
draw of the task's examples). `compare` counts both:

    se^2 = s_d^2 / n_d + s_b^2 / n_b     (Welch: the spread of each side's per-seed accuracies)
         + var_i(dbar_i) / m             (the m test examples, paired: both sides scored the same ones;
                                          dbar_i is the seed-averaged correctness difference on example i)
         - (r_d^2 / n_d + r_b^2 / n_b) / m   (the seed-by-example residual, which both terms above carry:
                                          counted once, as the crossed seeds x examples design has it)

with Welch-Satterthwaite degrees of freedom, so its interval is about the task: new seeds and new
examples ("on this task"). Without per-example outcomes (a program that reports only an accuracy) the
example term is missing and the interval is about this test split ("on this data set's test split").
The error reduction's interval is the difference's over the baseline's error, so the two never disagree;
an interval is never narrower than one test example, and a claim needs spread on at least one side.
Power is for a declared effect, not the observed one; looks at growing seed counts follow a declared
schedule with O'Brien-Fleming alpha spending. analysis/simulate.py checks all of it by simulation
(tests/unit/analysis/test_calibration.py, bench/verdict_calibration.py).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 100_000
TASK, SPLIT = "task", "split"  # what an interval covers: new seeds and examples, or new seeds on this split
RESOLUTION = 0.005  # the smallest half-width an interval has when the test split's size is unknown


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
class Outcomes:
    """One config's replicates: the per-seed accuracies, and, when the trials saved their predictions, the
    per-seed, per-example correctness on the shared held-out split (seeds x examples, 0/1)."""

    accuracies: np.ndarray
    correct: np.ndarray | None = None
    split: str = ""  # which examples `correct` is about: two configs pair only on the same split

    @classmethod
    def of(cls, accuracies: Sequence[float], correct: Sequence[Sequence[int]] | np.ndarray | None = None,
           split: str = "") -> Outcomes:
        return cls(np.asarray(accuracies, dtype=float), None if correct is None else np.asarray(correct, dtype=float),
                   split)


@dataclass(frozen=True)
class Difference:
    """a - b in accuracy, with its interval, two-sided p-value and what they cover."""

    diff: float
    ci: tuple[float, float]
    p_value: float
    se: float
    df: float
    population: str  # TASK or SPLIT
    seed_var: float  # the seeds' share of se^2
    example_var: float  # the examples' share of se^2
    examples: int | None  # the test split's size, when known
    spread: bool  # some seed varied: without, no claim can be made

    def lower_bound(self, alpha: float = ALPHA) -> float:
        """One-sided (1 - alpha) lower confidence bound of a - b."""
        return self.diff - _critical(1 - alpha, self.df) * self.se

    def significant(self, alpha: float = ALPHA) -> bool:
        return self.spread and self.p_value < alpha


def _variance(values: np.ndarray) -> float:
    """The sample variance, exactly 0 for values equal up to rounding (accuracies are multiples of 1/m)."""
    variance = float(values.var(ddof=1))
    return variance if variance > 1e-20 else 0.0


def _critical(q: float, df: float) -> float:
    return float(stats.t.ppf(q, df)) if math.isfinite(df) else float(stats.norm.ppf(q))


def _residual_ms(correct: np.ndarray) -> float:
    """The seed-by-example residual mean square of a seeds x examples matrix (two-way ANOVA): the noise that
    both the per-seed accuracies and the per-example means carry, which must be counted once."""
    n, m = correct.shape
    if n < 2 or m < 2:
        return 0.0
    r = correct - correct.mean(axis=1, keepdims=True) - correct.mean(axis=0, keepdims=True) + correct.mean()
    return float((r ** 2).sum()) / ((n - 1) * (m - 1))


def _example_var(a: Outcomes, b: Outcomes) -> tuple[float, int | None]:
    """The examples' share of the difference's variance, and the split's size. Paired (both sides scored
    the same examples): var_i(dbar_i) / m, less the residual noise the per-seed accuracies already count
    (crossed seeds x examples: Var = s_run^2/n + s_example^2/m + s_residual^2/(n m), each once)."""
    if a.correct is None or b.correct is None or a.correct.shape[1] != b.correct.shape[1] or a.split != b.split:
        return 0.0, None
    dbar = a.correct.mean(axis=0) - b.correct.mean(axis=0)
    m = dbar.size
    if m < 2:
        return 0.0, m
    counted = _residual_ms(a.correct) / a.correct.shape[0] + _residual_ms(b.correct) / b.correct.shape[0]
    return max(0.0, float(dbar.var(ddof=1)) - counted) / m, m


def compare(a: Outcomes, b: Outcomes, alpha: float = ALPHA, examples: int | None = None) -> Difference:
    """a - b on accuracy, both sources of noise counted (see the module's docstring); both sides need at
    least 2 seeds. `examples`: the test split's size when the outcomes do not carry it (sets the finest
    interval)."""
    x, y = a.accuracies, b.accuracies
    if x.size < 2 or y.size < 2:
        raise ValueError("a comparison needs at least 2 seeds per side")
    diff = float(x.mean() - y.mean())
    va, vb = (_variance(v) / v.size for v in (x, y))
    vex, paired = _example_var(a, b)
    m = paired or examples
    se = math.sqrt(va + vb + vex)
    parts = [(va, x.size - 1), (vb, y.size - 1), (vex, (m or 2) - 1)]
    df = se ** 4 / sum(v ** 2 / d for v, d in parts if v > 0) if se > 0 else math.inf
    floor = 1 / m if m else RESOLUTION  # never narrower than one test example
    half = max(_critical(1 - alpha / 2, df) * se, floor)
    p = float(2 * stats.t.sf(abs(diff) / se, df)) if se > 0 else (1.0 if diff == 0 else 0.0)
    return Difference(diff, (diff - half, diff + half), p, se, df, TASK if paired else SPLIT, va + vb, vex, m,
                      spread=va + vb > 0)


def error_reduction(d: Difference, baseline_accuracy: float) -> tuple[float | None, tuple[float, float] | None]:
    """(err_b - err_d) / err_b = (acc_d - acc_b) / err_b, and the difference's interval over err_b: the
    same procedure, so it excludes 0 exactly when the difference's does. None where the baseline makes
    no errors."""
    err_b = 1 - baseline_accuracy
    if err_b <= 0:
        return None, None
    return d.diff / err_b, (d.ci[0] / err_b, d.ci[1] / err_b)


def probability_of_superiority(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> tuple[
        float, tuple[float, float]]:
    """P(a random seed of a scores above a random seed of b), ties counting half (Dror et al. 2019; Agarwal et
    al. 2021's probability of improvement), with a Wilson score interval at the effective size whose binomial
    variance matches the Mann-Whitney estimate's under no difference, 3 n_a n_b / (n_a + n_b + 1): unlike a
    bootstrap over 3-10 seeds it never collapses to a point when the seeds do not overlap (coverage by
    simulation in tests/unit/analysis/test_calibration.py)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    above = float((x[:, None] > y[None, :]).mean())
    ties = float((x[:, None] == y[None, :]).mean())
    p = above + ties / 2
    n = 3 * x.size * y.size / (x.size + y.size + 1)
    z = float(stats.norm.ppf(1 - alpha / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, (max(0.0, centre - half), min(1.0, centre + half))


def power(delta: float, seed_var_per_seed: float, example_var: float, seeds: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided test to detect an accuracy difference `delta` with `seeds` per side, given the
    seeds' variance of one seed (s_d^2 + s_b^2) and the examples' share (which seeds do not shrink)."""
    se = math.sqrt(seed_var_per_seed / seeds + example_var)
    if se == 0:
        return 1.0 if delta else 0.0
    df = max(2 * seeds - 2, 1)
    critical = float(stats.t.ppf(1 - alpha / 2, df))
    shift = abs(delta) / se
    value = float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))
    return value if math.isfinite(value) else float(stats.norm.sf(critical - shift))


def seeds_needed(delta: float, seed_var_per_seed: float, example_var: float, alpha: float = ALPHA,
                 target: float = POWER) -> int | None:
    """Seeds per side for `target` power at an accuracy difference `delta`; None when no number of seeds
    reaches it (the test split's own noise is too large for that effect) or there is no spread to plan with."""
    if delta == 0 or not math.isfinite(delta) or seed_var_per_seed + example_var <= 0:
        return None
    if power(delta, 0.0, example_var, 2, alpha) < target and power(delta, seed_var_per_seed, example_var, MAX_SEEDS,
                                                                   alpha) < target:
        return None
    high = 2
    while power(delta, seed_var_per_seed, example_var, high, alpha) < target:  # power grows with seeds
        if high >= MAX_SEEDS:
            return None
        high *= 2
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        if power(delta, seed_var_per_seed, example_var, middle, alpha) >= target:
            high = middle
        else:
            low = middle + 1
    return low


def detectable(seed_var_per_seed: float, example_var: float, seeds: int, alpha: float = ALPHA,
               target: float = POWER) -> float:
    """The smallest accuracy difference detected with `target` power at `seeds` per side."""
    se = math.sqrt(seed_var_per_seed / seeds + example_var)
    df = max(2 * seeds - 2, 1)
    return (float(stats.t.ppf(1 - alpha / 2, df)) + float(stats.t.ppf(target, df))) * se


def spending(looks: Sequence[int], alpha: float = ALPHA) -> list[float]:
    """The nominal level of each look of a declared schedule (seeds at each look, e.g. 5, 10, 20): Lan-DeMets
    O'Brien-Fleming spending, alpha*(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) at information t = n_k / n_K,
    each look tested at its increment. The increments sum to alpha, so stopping at the first look that is
    significant keeps the false-positive rate at or below alpha (a union bound: slightly conservative)."""
    if not looks or list(looks) != sorted(set(looks)):
        raise ValueError("a schedule is increasing seed counts, e.g. 5,10,20")
    z = float(stats.norm.ppf(1 - alpha / 2))
    spent = [2 - 2 * float(stats.norm.cdf(z / math.sqrt(n / looks[-1]))) for n in looks]
    return [spent[0], *(b - a for a, b in zip(spent, spent[1:], strict=False))]


def holm(p_values: Sequence[float | None], alpha: float = ALPHA) -> list[bool | None]:
    """Holm's step-down: which of several p-values (None: not tested) are significant together at `alpha`."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    out: list[bool | None] = [None if p is None else False for p in p_values]
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (len(tested) - rank):
            break
        out[i] = True
    return out
