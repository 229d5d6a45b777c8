"""Worlds with a known truth, to calibrate the verdict's statistics by simulation (Bouthillier et al. 2021).

A model's chance to get an example right is sigmoid(intercept + run + difficulty + disagreement):
- `run`: the seed's quality, shared by the validation and the test split (a good seed is good on both);
- `difficulty`: the example's, shared by every model (some keywords are hard for all);
- `disagreement`: the model's own take on the example (two models equal on the task still differ
  item by item, so on one fixed test split one of them looks better).
A family's accuracy on the task is the expectation over all three; its intercept is solved for it. A
simulated verdict runs the same protocol as `analysis verdict`: `configs` candidates per family with the
family's accuracy, chosen by their validation mean on `seeds` seeds, the chosen one estimated on fresh
seeds and the shared test split, compared with `stats.compare`.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from analysis import stats

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(40)  # E[f(Z)], Z ~ N(0, 1)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


@dataclass(frozen=True)
class World:
    """A task and a protocol: accuracies on the task, the sizes of the noises (logit units), the splits."""

    baseline: float = 0.90  # the baseline family's accuracy on the task
    error_reduction: float = 0.0  # the dendritic family's true error reduction (0.1: 10 % fewer errors)
    run_sd: float = 0.12
    difficulty_sd: float = 1.6
    disagreement_sd: float = 0.9
    test_examples: int = 144
    val_examples: int = 144
    configs: int = 3  # candidates per family (the verdict's --top)

    @property
    def dendritic(self) -> float:
        return 1 - (1 - self.baseline) * (1 - self.error_reduction)

    @property
    def true_difference(self) -> float:
        return self.dendritic - self.baseline


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


@functools.lru_cache(maxsize=64)
def intercept(accuracy: float, world: World) -> float:
    """The intercept whose expected accuracy over runs, difficulties and disagreements is `accuracy`."""
    spread = math.sqrt(world.run_sd ** 2 + world.difficulty_sd ** 2 + world.disagreement_sd ** 2)
    low, high = -20.0, 20.0
    for _ in range(80):
        middle = (low + high) / 2
        if float(_WEIGHTS @ _sigmoid(middle + spread * _NODES)) < accuracy:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _correct(rng: np.random.Generator, mu: float, runs: np.ndarray, difficulty: np.ndarray,
             disagreement: np.ndarray) -> np.ndarray:
    """0/1 correctness, seeds x examples, of one config: runs (seeds,), the split's difficulties (examples,),
    its own disagreements on them (examples,)."""
    p = _sigmoid(mu + runs[:, None] + difficulty[None, :] + disagreement[None, :])
    return (rng.random(p.shape) < p).astype(np.float32)


def simulate_verdict(world: World, seeds: int, rng: np.random.Generator, fresh_seeds: bool = True,
                     per_example: bool = True, looks: Sequence[int] = (),
                     spend: bool = True) -> dict[str, float | bool]:
    """One verdict in `world`: choose a config per family on `seeds` seeds (validation mean), estimate the
    chosen on fresh seeds (or the same, `fresh_seeds=False`) on one shared test split, and compare. With
    `looks` (a schedule of seed counts), the estimate grows look by look and stops at the first look whose
    p-value is under its O'Brien-Fleming level (`spend=False`: under alpha at every look, the undeclared
    practice the schedule replaces). Returns the difference, its interval, the error reduction's,
    whether a difference was claimed, and the truth."""
    w = world
    test_difficulty, val_difficulty = (rng.normal(0, w.difficulty_sd, n) for n in (w.test_examples, w.val_examples))
    chosen = {}
    for family, accuracy in (("dendritic", w.dendritic), ("baseline", w.baseline)):
        mu = intercept(accuracy, w)
        best: tuple[float, np.ndarray, np.ndarray] | None = None
        for _ in range(w.configs):
            test_dis, val_dis = rng.normal(0, w.disagreement_sd, w.test_examples), rng.normal(
                0, w.disagreement_sd, w.val_examples)
            runs = rng.normal(0, w.run_sd, seeds)
            val = _correct(rng, mu, runs, val_difficulty, val_dis).mean(axis=1).mean()
            if best is None or val > best[0]:
                best = (float(val), test_dis, runs)
        assert best is not None
        chosen[family] = (mu, best[1], best[2])

    def estimate(n: int) -> dict[str, stats.Outcomes]:
        out = {}
        for family, (mu, test_dis, choice_runs) in chosen.items():
            runs = rng.normal(0, w.run_sd, n) if fresh_seeds else choice_runs[:n]
            correct = _correct(rng, mu, runs, test_difficulty, test_dis)
            out[family] = stats.Outcomes(correct.mean(axis=1).astype(float), correct if per_example else None)
        return out

    levels = stats.spending(looks) if looks and spend else [stats.ALPHA] * max(1, len(looks))
    schedule = list(looks) or [seeds]
    pool: dict[str, list[stats.Outcomes]] = {"dendritic": [], "baseline": []}
    found: dict[str, float | bool] = {}
    for n, level in zip(schedule, levels, strict=True):
        grown = estimate(n - sum(o.accuracies.size for o in pool["dendritic"]))
        for family, outcome in grown.items():
            pool[family].append(outcome)
        d, b = (_stack(pool[f]) for f in ("dendritic", "baseline"))
        diff = stats.compare(d, b, examples=w.test_examples)
        _, er_ci = stats.error_reduction(diff, float(b.accuracies.mean()))
        pick = stats.describe(d.accuracies.tolist())
        on_split = _split_accuracy(chosen["dendritic"][0], chosen["dendritic"][1] + test_difficulty, w.run_sd)
        found = {"diff": diff.diff, "low": diff.ci[0], "high": diff.ci[1], "claimed": diff.significant(level),
                 "er_low": er_ci[0] if er_ci else math.nan, "er_high": er_ci[1] if er_ci else math.nan,
                 "truth": w.true_difference, "true_er": w.error_reduction, "seeds": n,
                 "pick_covered": pick.ci is not None and pick.ci[0] <= on_split <= pick.ci[1],
                 "pick_bias": pick.mean - on_split}
        if found["claimed"]:
            break
    return found


def _split_accuracy(mu: float, examples: np.ndarray, run_sd: float) -> float:
    """A config's expected accuracy on this split (its examples' difficulty plus its own disagreement on each)
    over seeds: what its per-config interval, made of seeds on this split, is about."""
    return float(np.mean(_WEIGHTS @ _sigmoid(mu + run_sd * _NODES[:, None] + examples[None, :])))


def _stack(outcomes: list[stats.Outcomes]) -> stats.Outcomes:
    correct = [o.correct for o in outcomes]
    return stats.Outcomes(np.concatenate([o.accuracies for o in outcomes]),
                          None if any(c is None for c in correct) else np.concatenate(correct))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Calibration:
    coverage: float  # share of intervals of the accuracy difference holding the truth
    er_coverage: float  # the same for the error reduction
    claims: float  # share of verdicts claiming a difference (false positives under no effect, else power)
    pick_coverage: float  # share of the chosen dendritic config's own t intervals holding its accuracy on the split
    pick_bias: float  # its mean test accuracy minus that accuracy (pp): what its choice flattered it by


def calibrate(world: World, seeds: int, repeats: int, seed: int = 0, **options: object) -> Calibration:
    """`repeats` simulated verdicts in `world`: coverage of both intervals and the share that claim a difference."""
    rng = np.random.default_rng(seed)
    runs = [simulate_verdict(world, seeds, rng, **options) for _ in range(repeats)]  # type: ignore[arg-type]
    cover = np.mean([r["low"] <= r["truth"] <= r["high"] for r in runs])
    er_cover = np.mean([r["er_low"] <= r["true_er"] <= r["er_high"] for r in runs])
    return Calibration(float(cover), float(er_cover), float(np.mean([bool(r["claimed"]) for r in runs])),
                       float(np.mean([bool(r["pick_covered"]) for r in runs])),
                       float(np.mean([r["pick_bias"] for r in runs])) * 100)


def with_effect(world: World, error_reduction: float) -> World:
    return replace(world, error_reduction=error_reduction)
