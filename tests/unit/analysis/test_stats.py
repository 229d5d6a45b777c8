"""analysis/stats.py against textbook values (scipy, Cohen's power tables)."""
from __future__ import annotations

import pytest
from scipy import stats

from analysis.stats import describe, error_reduction, seeds_to_resolve, welch


def test_welch_matches_scipy() -> None:
    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.89, 0.92]
    diff = welch(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert diff.p_value == pytest.approx(reference.pvalue)
    assert diff.ci == pytest.approx(tuple(reference.confidence_interval()))


def test_describe_gives_the_t_interval() -> None:
    a = [0.91, 0.93, 0.92, 0.95]
    assert describe(a).ci == pytest.approx(tuple(stats.t.interval(0.95, 3, loc=0.9275, scale=stats.sem(a))))
    assert describe([0.5]).ci is None and describe([]).n == 0


def test_seeds_to_resolve_follows_cohens_tables() -> None:
    # 80 % power at alpha 0.05, two-sided: d = 0.5 needs 64 per group, d = 1 needs 17
    assert seeds_to_resolve(0.5, 1, 1) == 64 and seeds_to_resolve(1, 1, 1) == 17
    assert seeds_to_resolve(0, 1, 1) is None


def test_error_reduction_with_no_spread_is_its_point() -> None:
    point, interval = error_reduction([0.9, 0.9], [0.8, 0.8])
    assert point == pytest.approx(0.5) and interval == pytest.approx((0.5, 0.5))
