"""Dendritic against baseline as two Pareto fronts: accuracy up, cost (flash, RAM, parameters) down.

A front's hypervolume is the area it dominates up to a reference point (an accuracy floor, a cost
ceiling): one number for "how good is this family at every size". Two families' hypervolumes compare
only against the same reference point, so `shared_reference` derives one from both fronts.

Cost is measured in decades (log10) for the hypervolume, as on the plots' log axes: model sizes span
orders of magnitude, and halving a 5 kB model should count as much as halving a 500 kB one (on a
linear axis the largest models' span decides the area and the small ones barely register).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from analysis.rank import BASELINE, DENDRITIC, finished, pareto_front, smallest_within

DEPLOYED_COSTS = ("tflite_int8_bytes", "arena_bytes")  # flash and RAM: what decides if a model fits a device
SIZE_COSTS = ("params", "macs")  # what every trial of train_trial.py reports
COST_LABELS = {"tflite_int8_bytes": "flash (int8 TFLite bytes)", "arena_bytes": "RAM (tensor arena bytes)",
               "params": "parameters", "macs": "MACs"}
MARGIN = 0.1  # the reference point lies this share of each axis's range beyond the fronts' worst values...
MIN_ACCURACY_MARGIN = 0.01  # ... but at least 1 pp below the lowest accuracy
MIN_COST_FACTOR = 1.1  # ... and at least 1.1x above the largest cost


@dataclass(frozen=True)
class Reference:
    """The hypervolume's reference point: nothing below the accuracy floor or above the cost ceiling counts."""

    accuracy: float
    cost: float


@dataclass(frozen=True)
class Smallest:
    """The compression question read off the fronts: each family's cheapest front member (on `cost`) whose
    accuracy is at least `target`, the best baseline accuracy less `pp` points."""

    cost: str
    pp: float
    target: float
    dendritic: pd.Series | None
    baseline: pd.Series | None

    @property
    def ratio(self) -> float | None:
        """Dendritic cost over baseline cost (below 1: the dendrites bought a smaller model)."""
        if self.dendritic is None or self.baseline is None:
            return None
        return float(self.dendritic[self.cost]) / float(self.baseline[self.cost])


@dataclass(frozen=True)
class FrontComparison:
    """Both families' fronts on one cost axis, with their hypervolumes against one reference point."""

    cost: str
    accuracy: str
    trials: dict[str, pd.DataFrame]  # family -> its finished trials that report both numbers
    fronts: dict[str, pd.DataFrame]  # family -> its Pareto front, cheapest first
    reference: Reference
    hypervolumes: dict[str, float]
    smallest: Smallest | None  # None unless both families have a front


def families(df: pd.DataFrame, baseline: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Finished trials per family (DENDRITIC, BASELINE; empty ones left out). The trial's own `dendrites`
    setting decides, since one study may switch it per trial; a trial that does not record it belongs to
    the sweep it came from (`df` the dendritic one, `baseline` the baseline one)."""
    tagged = [_with_dendrites(df, True)] + ([_with_dendrites(baseline, False)] if baseline is not None else [])
    pool = finished(pd.concat(tagged, ignore_index=True))
    split = {DENDRITIC: pool[pool["_dendritic"]], BASELINE: pool[~pool["_dendritic"]]}
    return {name: part.drop(columns="_dendritic") for name, part in split.items() if not part.empty}


def _with_dendrites(df: pd.DataFrame, default: bool) -> pd.DataFrame:
    """`df` with a `_dendritic` column: the trial's `dendrites` setting, else `default`."""
    recorded = df.get("dendrites", pd.Series(pd.NA, index=df.index, dtype=object))
    return df.assign(_dendritic=[default if pd.isna(v) else bool(v) for v in recorded])


def cost_axes(df: pd.DataFrame) -> list[str]:
    """The costs to draw fronts on: flash and RAM where the trials measured them, else parameters and MACs."""
    def measured(columns: tuple[str, ...]) -> list[str]:
        return [c for c in columns if c in df and bool(df[c].notna().any())]

    return measured(DEPLOYED_COSTS) or measured(SIZE_COSTS)


def hypervolume(accuracy: ArrayLike, cost: ArrayLike, reference: Reference) -> float:
    """Area of the (cost, accuracy) plane that the points dominate (at most as costly, at least as accurate)
    and that dominates the reference point; points beyond the reference add nothing. Any point set: the
    dominated ones add nothing either."""
    acc, spend = np.asarray(accuracy, dtype=float), np.asarray(cost, dtype=float)
    inside = (acc > reference.accuracy) & (spend < reference.cost)
    order = np.argsort(spend[inside], kind="stable")
    spend, best = spend[inside][order], np.maximum.accumulate(acc[inside][order])
    widths = np.diff(np.append(spend, reference.cost))  # best[i] holds from spend[i] to the next cost
    return float(widths @ (best - reference.accuracy))


def front_hypervolume(front: pd.DataFrame, reference: Reference, cost: str, accuracy: str = "best_val_acc") -> float:
    """A front's hypervolume with cost in decades (log10; see the module's note): units accuracy x decades."""
    return hypervolume(front[accuracy].astype(float), np.log10(front[cost].astype(float)),
                       Reference(reference.accuracy, math.log10(reference.cost)))


def shared_reference(fronts: Iterable[pd.DataFrame], cost: str, accuracy: str = "best_val_acc") -> Reference:
    """One reference point for all the fronts: the worst accuracy and the largest cost among their members,
    each pushed out by MARGIN of that axis's range across the fronts (cost in decades), at least 1 pp and
    1.1x. Worse than every member, as Optuna requires, so every member adds area; derived from the fronts
    and not the trials, so that a broken trial far below cannot swamp the differences that matter."""
    points = pd.concat([front[[cost, accuracy]] for front in fronts]).astype(float)
    acc, decades = points[accuracy], np.log10(points[cost])
    floor = acc.min() - max(MIN_ACCURACY_MARGIN, MARGIN * (acc.max() - acc.min()))
    ceiling = points[cost].max() * max(MIN_COST_FACTOR, 10 ** (MARGIN * (decades.max() - decades.min())))
    return Reference(float(floor), float(ceiling))


def smallest_on_fronts(fronts: Mapping[str, pd.DataFrame], cost: str, pp: float,
                       accuracy: str = "best_val_acc") -> Smallest | None:
    """The smallest model of each family within `pp` points of the best baseline accuracy (None without
    both families)."""
    if not {DENDRITIC, BASELINE} <= set(fronts):
        return None
    best_baseline = float(fronts[BASELINE][accuracy].max())
    dendritic, base = (smallest_within(fronts[name], best_baseline, pp, accuracy, cost)
                       for name in (DENDRITIC, BASELINE))
    return Smallest(cost, pp, best_baseline - pp / 100, dendritic, base)


def compare_fronts(groups: Mapping[str, pd.DataFrame], cost: str, accuracy: str = "best_val_acc",
                   pp: float = 1.0) -> FrontComparison | None:
    """Each family's front on `cost`, its hypervolume against the shared reference point, and the smallest
    model within `pp` of the best baseline; None when no family's trials report `cost` (a cost of 0 or less
    means unmeasured and is left out: it has no place on a log axis)."""
    trials = {}
    for name, df in groups.items():
        done = finished(df).dropna(subset=[cost, accuracy])
        done = done[done[cost].astype(float) > 0]
        if not done.empty:
            trials[name] = done
    if not trials:
        return None
    fronts = {name: pareto_front(done, cost, accuracy) for name, done in trials.items()}
    reference = shared_reference(fronts.values(), cost, accuracy)
    hypervolumes = {name: front_hypervolume(front, reference, cost, accuracy) for name, front in fronts.items()}
    return FrontComparison(cost, accuracy, trials, fronts, reference, hypervolumes,
                           smallest_on_fronts(fronts, cost, pp, accuracy))
