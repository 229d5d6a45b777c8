"""analysis/stats.py against textbook values (scipy, Cohen's power tables) and its own rules."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from analysis import stats
from analysis.stats import Outcomes, compare, describe, error_reduction


def test_without_per_example_outcomes_the_comparison_is_welchs() -> None:
    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.89, 0.92]
    diff = compare(Outcomes.of(a), Outcomes.of(b))
    reference = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert diff.p_value == pytest.approx(reference.pvalue)
    assert diff.ci == pytest.approx(tuple(reference.confidence_interval()))
    assert diff.population == stats.SPLIT and diff.example_var == 0


def test_describe_gives_the_t_interval() -> None:
    a = [0.91, 0.93, 0.92, 0.95]
    assert describe(a).ci == pytest.approx(tuple(scipy_stats.t.interval(0.95, 3, loc=0.9275, scale=scipy_stats.sem(a))))
    assert describe([0.5]).ci is None and describe([]).n == 0


def test_power_follows_cohens_tables() -> None:
    # 80 % power at alpha 0.05, two-sided, sd 1 on each side: d = 0.5 needs 64 per group, d = 1 needs 17
    assert stats.seeds_needed(0.5, 2.0, 0.0) == 64 and stats.seeds_needed(1.0, 2.0, 0.0) == 17
    assert stats.seeds_needed(0.0, 2.0, 0.0) is None


def test_the_test_splits_own_noise_caps_what_seeds_can_resolve() -> None:
    """Seeds shrink the seeds' share only: an effect below the split's noise is out of reach at any count."""
    assert stats.seeds_needed(0.01, 2e-4, 1e-4) is None  # se never falls below 1 pp
    assert stats.seeds_needed(0.05, 2e-4, 1e-4) is not None
    assert stats.detectable(2e-4, 1e-4, 10_000) == pytest.approx(2.80 * 0.01, rel=0.01)


def correctness(rng: np.random.Generator, per_example: np.ndarray, seeds: int) -> np.ndarray:
    return (rng.random((seeds, per_example.size)) < per_example).astype(float)


def test_two_models_equal_on_the_task_but_apart_item_by_item_are_not_told_apart_by_one_split() -> None:
    """Identical accuracy on average, each right on its own examples: the examples' noise widens the interval."""
    rng = np.random.default_rng(0)
    a_items, b_items = np.repeat([0.95, 0.75], 100), np.repeat([0.75, 0.95], 100)
    rng.shuffle(b_items)
    a, b = correctness(rng, a_items, 5), correctness(rng, b_items, 5)
    split_only = compare(Outcomes.of(a.mean(1)), Outcomes.of(b.mean(1)))
    task = compare(Outcomes.of(a.mean(1), a), Outcomes.of(b.mean(1), b))
    assert task.population == stats.TASK and task.se > split_only.se and task.examples == 200
    assert task.ci[1] - task.ci[0] > split_only.ci[1] - split_only.ci[0]
    elsewhere = compare(Outcomes.of(a.mean(1), a, "split-a"), Outcomes.of(b.mean(1), b, "split-b"))
    assert elsewhere.population == stats.SPLIT  # examples of two splits do not pair


def test_no_spread_claims_nothing_and_the_interval_keeps_a_test_examples_width() -> None:
    same = compare(Outcomes.of([0.9, 0.9, 0.9]), Outcomes.of([0.8, 0.8, 0.8]), examples=100)
    assert not same.spread and not same.significant() and same.ci == pytest.approx((0.09, 0.11))


def test_the_error_reduction_comes_from_the_same_interval() -> None:
    diff = compare(Outcomes.of([0.91, 0.93, 0.92, 0.95]), Outcomes.of([0.90, 0.89, 0.92]))
    point, ci = error_reduction(diff, 0.9033333)
    assert point == pytest.approx(diff.diff / (1 - 0.9033333))
    assert ci == pytest.approx((diff.ci[0] / (1 - 0.9033333), diff.ci[1] / (1 - 0.9033333)))
    assert (ci[0] > 0) == (diff.ci[0] > 0)  # never "no evidence" beside an interval that excludes 0
    assert error_reduction(diff, 1.0) == (None, None)


def test_obrien_fleming_levels_spend_alpha_over_the_looks() -> None:
    levels = stats.spending([5, 10, 20])
    assert sum(levels) == pytest.approx(0.05) and levels[0] < 1e-3 < levels[1] < levels[2]
    assert stats.spending([20]) == pytest.approx([0.05])
    with pytest.raises(ValueError):
        stats.spending([10, 5])


def test_holm_steps_down() -> None:
    assert stats.holm([0.01, 0.04]) == [True, True]
    assert stats.holm([0.03, 0.04]) == [False, False]  # 0.03 > 0.05 / 2
    assert stats.holm([0.02, None]) == [True, None]


def test_probability_of_superiority_counts_seed_pairs() -> None:
    p, (low, high) = stats.probability_of_superiority([0.9, 0.92, 0.91], [0.8, 0.85, 0.83])
    assert p == 1.0 and 0.5 < low < high == 1.0  # three seeds apart: likely better, not certainly
    p, _ = stats.probability_of_superiority([0.9, 0.8], [0.85, 0.85])
    assert p == 0.5
