"""Ranking trials: the best under constraints, Pareto fronts, the compression question, importance."""
from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pandas as pd

from analysis.load import META
from dendrisweep import SETTINGS, Status
from dendrisweep.sweep import quiet_optuna

DENDRITIC, BASELINE = "dendritic", "baseline"  # the two families a comparison has

def finished(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["state"] == Status.FINISHED) & df["objective"].notna()]


def best(df: pd.DataFrame, maximize: bool = True, max_params: int | None = None, max_macs: int | None = None,
         min_accuracy: float | None = None) -> pd.Series | None:
    """The best finished trial by the sweep's metric, among those meeting every constraint."""
    pool = finished(df)
    if max_params is not None:
        pool = pool[pool["params"] <= max_params]
    if max_macs is not None:
        pool = pool[pool["macs"] <= max_macs]
    if min_accuracy is not None:
        pool = pool[pool["best_val_acc"] >= min_accuracy]
    if pool.empty:
        return None
    return pool.loc[pool["objective"].idxmax() if maximize else pool["objective"].idxmin()]


def pareto_front(df: pd.DataFrame, cost: str = "params", accuracy: str = "best_val_acc") -> pd.DataFrame:
    """Finished trials no other trial beats on both lower cost and higher accuracy, by cost."""
    pool = finished(df).dropna(subset=[cost, accuracy]).sort_values([cost, accuracy], ascending=[True, False])
    keep, best_so_far = [], -math.inf
    for index, row in pool.iterrows():
        if row[accuracy] > best_so_far:
            keep.append(index)
            best_so_far = row[accuracy]
    return pool.loc[keep]


def smallest_within(df: pd.DataFrame, reference_acc: float, pp: float, accuracy: str = "best_val_acc",
                    cost: str = "params") -> pd.Series | None:
    """The cheapest finished trial (fewest parameters, or least of `cost`) within `pp` points of a reference
    accuracy; on a Pareto front, the front's member that answers "how small can it get"."""
    pool = finished(df).dropna(subset=[cost, accuracy])
    pool = pool[pool[accuracy] >= reference_acc - pp / 100]
    return None if pool.empty else pool.loc[pool[cost].astype(float).idxmin()]


def swept_settings(df: pd.DataFrame) -> list[str]:
    """Parameters that vary across the finished trials (what the sweep searched): registry settings,
    or any other program's own parameters."""
    pool = finished(df)
    names = [c for c in pool.columns if c not in META]
    return [name for name in names if pool[name].map(_hashable).nunique(dropna=True) > 1]


def _hashable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list) else value


def importance(df: pd.DataFrame, maximize: bool = True) -> dict[str, float]:
    """fANOVA importance of each swept setting for the objective (Optuna's evaluator)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    pool, names = finished(df), swept_settings(df)
    if len(pool) < 3 or not names:
        return {}
    distributions: dict[str, Any] = {}
    for name in names:
        values = pool[name].map(_hashable)
        kind = SETTINGS[name].kind if name in SETTINGS else _kind(values)
        if kind == "int":
            distributions[name] = IntDistribution(int(values.min()), int(values.max()))
        elif kind == "float":
            low, high = float(values.min()), float(values.max())
            distributions[name] = FloatDistribution(low, high, log=low > 0 and high / low >= 100)
        else:
            distributions[name] = CategoricalDistribution(sorted(values.unique(), key=str))
    quiet_optuna()
    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    numeric = {n for n, d in distributions.items() if not isinstance(d, CategoricalDistribution)}
    study.add_trials([optuna.trial.create_trial(params={n: row[n] if n in numeric else _hashable(row[n])
                                                        for n in names},
                                                distributions=distributions, value=float(row["objective"]))
                      for _, row in pool.iterrows()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def direction(df: pd.DataFrame, maximize: bool = True) -> dict[str, float]:
    """Spearman correlation of each numeric swept setting with the objective, signed so that positive means
    "more of it scored better" (minimised metrics flipped); a choice among categories has none (NaN)."""
    pool = finished(df)
    signs = {}
    for name in swept_settings(df):
        values = pool[name]
        numeric = values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()
        rho = values.astype(float).corr(pool["objective"].astype(float), method="spearman") if numeric else math.nan
        signs[name] = float(rho) * (1 if maximize else -1)
    return signs


def _kind(values: pd.Series) -> str:
    """A parameter outside the registry: numbers are ranges, anything else is a choice."""
    numbers = values.dropna()
    if numbers.map(lambda v: isinstance(v, int) and not isinstance(v, bool)).all():
        return "int"
    return "float" if numbers.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all() else "choice"


def row_config(row: pd.Series) -> dict[str, Any]:
    """A trial's full training config, checked by the registry (pandas types back to plain values)."""
    config = {}
    for name, setting in SETTINGS.items():
        value = row.get(name)
        missing = value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))
        config[name] = setting.default if missing else setting.coerce(value.item() if hasattr(value, "item") else value)
    return config


def recorded_data(row: pd.Series) -> tuple[str | None, str | None]:
    """(source, digest) of the data a trial trained on, as its record says (None: not recorded)."""
    return tuple(v if isinstance(v, str) and v else None  # type: ignore[return-value]
                 for v in (row.get("data_source"), row.get("data_digest")))
