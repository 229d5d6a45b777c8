"""The verdict's statistics calibrated by simulation (analysis/simulate.py): worlds with a known truth, one
shared 144-example test split, 2,000 verdicts each under the verdict's protocol (3 candidates per side
chosen on validation, the picks estimated on fresh seeds), straight through stats.compare.
bench/verdict_calibration.py prints the full table."""
from __future__ import annotations

import numpy as np
from scipy import stats as scipy_stats

from analysis import stats
from analysis.simulate import World, calibrate, with_effect

REPEATS = 2000
WORLD = World()  # 90 % accuracy on the task, a 144-example test split, top 3 per side


def test_both_intervals_cover_the_truth_at_5_seeds() -> None:
    found = calibrate(with_effect(WORLD, 0.10), seeds=5, repeats=REPEATS, seed=1)
    assert found.coverage >= 0.93 and found.er_coverage >= 0.93


def test_with_no_effect_on_the_task_few_verdicts_claim_one_at_10_seeds_on_one_split() -> None:
    found = calibrate(WORLD, seeds=10, repeats=REPEATS, seed=2)
    assert found.claims <= 0.06 and found.coverage >= 0.93


def test_looks_at_5_10_and_20_seeds_keep_the_false_positive_rate() -> None:
    found = calibrate(WORLD, seeds=5, repeats=REPEATS, seed=3, looks=(5, 10, 20))
    assert found.claims <= 0.06


def test_counting_the_seeds_alone_would_claim_too_often() -> None:
    """Why the test examples' noise is counted: without it, more seeds make the false-positive rate worse."""
    found = calibrate(WORLD, seeds=10, repeats=REPEATS, seed=4, per_example=False)
    assert found.claims > 0.08


def test_the_probability_of_superiority_interval_covers_at_5_seeds() -> None:
    """Seeds normal with sd 1, apart by delta: P(a seed of a beats one of b) = Phi(delta / sqrt 2)."""
    rng = np.random.default_rng(5)
    for delta in (0.0, 1.0, 3.0):
        truth = float(scipy_stats.norm.cdf(delta / np.sqrt(2)))
        draws = [stats.probability_of_superiority(rng.normal(delta, 1, 5), rng.normal(0, 1, 5))[1]
                 for _ in range(REPEATS)]
        assert np.mean([low <= truth <= high for low, high in draws]) >= 0.93, delta
