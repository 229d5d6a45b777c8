"""analysis/pareto.py: fronts per family, hypervolume (checked against Optuna's), the shared reference point."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from optuna._hypervolume import compute_hypervolume

from analysis.load import frame, row
from analysis.pareto import (
    BASELINE,
    DENDRITIC,
    Reference,
    compare_fronts,
    cost_axes,
    families,
    front_hypervolume,
    hypervolume,
    shared_reference,
)
from dendrisweep.contract import TrialRecord


def trial(i: int, acc: float, params: int, dendrites: bool | None, **extra: object) -> dict[str, object]:
    config: dict[str, object] = {"learning_rate": 0.01} if dendrites is None else {"dendrites": dendrites}
    return {**row(TrialRecord(run_id=f"r{i}", status="finished", best_val_acc=acc, params=params, macs=10 * params,
                              config=config), state="finished", objective=acc, source="optuna", trial=i), **extra}


def optuna_hypervolume(acc: np.ndarray, cost: np.ndarray, reference: Reference) -> float:
    """Optuna's, on the same problem turned into minimisation (accuracy negated)."""
    return compute_hypervolume(np.column_stack([-acc, cost]), np.array([-reference.accuracy, reference.cost]))


def test_hypervolume_by_hand() -> None:
    # three steps of width 1 from cost 1, 2, 3 to the ceiling 4, heights 0.5, 0.8, 0.9 over the floor 0
    assert hypervolume([0.5, 0.8, 0.9], [1, 2, 3], Reference(0.0, 4.0)) == pytest.approx(2.2)
    # a dominated point and one beyond the reference add nothing; no point at all: nothing
    assert hypervolume([0.5, 0.4, 0.8, 0.9, 0.99], [1, 1.5, 2, 3, 5], Reference(0.0, 4.0)) == pytest.approx(2.2)
    assert hypervolume([], [], Reference(0.0, 1.0)) == 0.0


@pytest.mark.parametrize("seed", range(30))
def test_hypervolume_matches_optuna_on_random_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    acc = rng.uniform(0.3, 1.0, n)
    cost = rng.choice(rng.uniform(1, 100, 8), n) if seed % 3 == 0 else rng.uniform(1, 100, n)  # some tied costs
    if seed % 5 == 0:
        acc = np.round(acc, 1)  # some tied accuracies
    reference = Reference(float(acc.min() - rng.uniform(0, 0.2)), float(cost.max() + rng.uniform(0, 20)))
    assert hypervolume(acc, cost, reference) == pytest.approx(optuna_hypervolume(acc, cost, reference), rel=1e-12)


def test_front_hypervolume_counts_cost_in_decades() -> None:
    front = pd.DataFrame({"params": [100, 1000], "best_val_acc": [0.8, 0.9]})
    reference = Reference(0.7, 10_000)
    # 0.1 over the floor for a decade (100 -> 1000), then 0.2 for a decade (1000 -> 10000)
    assert front_hypervolume(front, reference, "params") == pytest.approx(0.3)
    bigger = front.assign(params=front["params"] * 50)  # every model 50x larger: the same hypervolume
    assert front_hypervolume(bigger, Reference(0.7, 500_000), "params") == pytest.approx(0.3)


def test_families_by_the_dendrites_setting_else_by_the_sweep() -> None:
    study = frame([trial(0, 0.9, 100, True), trial(1, 0.8, 50, False), trial(2, 0.85, 70, None)])
    baseline = frame([trial(3, 0.7, 40, None), trial(4, 0.75, 60, False)])
    groups = families(study, baseline)
    assert sorted(groups[DENDRITIC]["run_id"]) == ["r0", "r2"]
    assert sorted(groups[BASELINE]["run_id"]) == ["r1", "r3", "r4"]
    assert list(families(frame([trial(0, 0.9, 100, True)]))) == [DENDRITIC]


def test_shared_reference_is_worse_than_every_front_member() -> None:
    fronts = [pd.DataFrame({"params": [100, 1000], "best_val_acc": [0.8, 0.9]}),
              pd.DataFrame({"params": [10, 10_000], "best_val_acc": [0.5, 0.95]})]
    reference = shared_reference(fronts, "params")
    assert reference.accuracy == pytest.approx(0.5 - 0.1 * 0.45)  # 10 % of the accuracy range below the lowest
    assert reference.cost == pytest.approx(10_000 * 10 ** (0.1 * 3))  # 10 % of 3 decades above the largest
    single = shared_reference([pd.DataFrame({"params": [100], "best_val_acc": [0.8]})], "params")
    assert (single.accuracy, single.cost) == pytest.approx((0.79, 110))  # no range: 1 pp and 1.1x


def test_compare_fronts_reads_the_smallest_within_off_both_fronts() -> None:
    dendritic = frame([trial(0, 0.90, 300, True), trial(1, 0.88, 120, True), trial(2, 0.80, 50, True),
                       trial(3, 0.85, 400, True)])  # r3 is dominated by r1
    baseline = frame([trial(4, 0.89, 500, False), trial(5, 0.87, 250, False), trial(6, 0.70, 40, False)])
    c = compare_fronts(families(dendritic, baseline), "params", pp=2.0)
    assert c is not None
    assert c.fronts[DENDRITIC]["run_id"].tolist() == ["r2", "r1", "r0"]
    assert c.fronts[BASELINE]["run_id"].tolist() == ["r6", "r5", "r4"]
    assert c.reference == shared_reference(c.fronts.values(), "params")
    log_reference = Reference(c.reference.accuracy, math.log10(c.reference.cost))
    for family, front in c.fronts.items():
        expected = optuna_hypervolume(front["best_val_acc"].to_numpy(float),
                                      np.log10(front["params"].to_numpy(float)), log_reference)
        assert c.hypervolumes[family] == pytest.approx(expected) and expected > 0
    small = c.smallest
    assert small is not None and small.target == pytest.approx(0.87)  # best baseline 0.89 less 2 pp
    assert small.dendritic is not None and small.dendritic["run_id"] == "r1"
    assert small.baseline is not None and small.baseline["run_id"] == "r5"
    assert small.ratio == pytest.approx(120 / 250)


def test_one_family_has_no_compression_answer_and_unmeasured_costs_are_left_out() -> None:
    only = frame([trial(0, 0.9, 300, True, arena_bytes=0), trial(1, 0.8, 100, True, arena_bytes=2000)])
    groups = families(only)
    c = compare_fronts(groups, "arena_bytes")
    assert c is not None and c.smallest is None and list(c.hypervolumes) == [DENDRITIC]
    assert c.fronts[DENDRITIC]["run_id"].tolist() == ["r1"]
    assert compare_fronts(groups, "tflite_int8_bytes") is None
    assert cost_axes(only) == ["arena_bytes"] and cost_axes(frame([trial(0, 0.9, 300, True)])) == ["params", "macs"]
