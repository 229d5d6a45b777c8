"""Early termination with W&B's own hyperband rule (the `sweeps` engine's `stop_runs`).

Bands at min_iter * eta^k (or max_iter / eta^k for k < s) logged values; when a running trial has just
logged the value of a band, it is stopped if that value is outside the best 1/eta of every trial's
value at that band (running, finished or stopped: W&B looks at every run of the sweep). The engine
itself decides, so offline sweeps stop exactly the runs W&B's server would.
"""
from __future__ import annotations

import math
from typing import Any

from optuna.pruners import BasePruner
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from dendrisweep.sweep.spec import SweepSpec
from dendrisweep.sweep.wandb_engine import import_sweeps


def bands(early_terminate: dict[str, Any]) -> list[int]:
    """The engine's bands: the logged-value counts (0-based indices) at which runs may be stopped."""
    eta = early_terminate.get("eta", 3)
    if "min_iter" in early_terminate:
        return [int(early_terminate["min_iter"] * eta ** k) for k in range(100)
                if early_terminate["min_iter"] * eta ** k < 1e9]
    found, band = [], float(early_terminate["max_iter"])
    for _ in range(early_terminate["s"]):
        band /= eta
        if band < 1:
            break
        found.append(int(band))
    return sorted(found)


class WandbHyperband(BasePruner):
    """Optuna's pruner interface over W&B's hyperband: asked at each reported step, it consults the
    engine only when the trial has just reached a band (the only moments the rule can stop it)."""

    def __init__(self, spec: SweepSpec) -> None:
        assert spec.metric is not None and "early_terminate" in spec.raw
        early_terminate = {k: v for k, v in spec.raw["early_terminate"].items() if k != "strict"}
        self._config = {"method": "random", "metric": {"name": spec.metric, "goal": spec.goal},
                        "early_terminate": early_terminate, "parameters": {"x": {"value": 0}}}
        self._metric = spec.metric
        self._bands = set(bands(early_terminate))

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        logged = len(trial.intermediate_values)
        if logged - 1 not in self._bands:
            return False
        sweeps = import_sweeps()
        runs = []
        for t in study.get_trials(deepcopy=False):
            if t.state == TrialState.WAITING or not t.intermediate_values:
                continue
            values = t.intermediate_values if t.number != trial.number else trial.intermediate_values
            history = [{self._metric: v} for _, v in sorted(values.items()) if math.isfinite(v)]
            state = sweeps.RunState.running if t.number == trial.number or t.state == TrialState.RUNNING \
                else sweeps.RunState.finished
            run = sweeps.SweepRun(name=str(t.number), state=state)
            run.history = history  # sweeps 0.2 drops the `history=` keyword (its field is aliased)
            runs.append(run)
        stopped = sweeps.stop_runs(self._config, runs, validate=False)
        return any(run.name == str(trial.number) for run in stopped)
