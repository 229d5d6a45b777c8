"""A `scheduler.optimizer` for W&B's multi-objective sweeps: the Pareto search under a target device's hard
limits (a constrained multi-objective Optuna study).

    scheduler: {engine: optuna, source: sweeps/device_limits.py, optimizer: optimizer}

Edit LIMITS for your device. A trial over any limit is infeasible: Optuna's constrained sampler prefers feasible
trials and never puts an infeasible one on the Pareto front. The same file works under W&B's client-side scheduler
(wandb 0.31: `wandb sweep`, then its scheduler calls `optimizer(SweepInfo)`) and offline (`python agent.py`):
- a limit on a metric the sweep optimises (in `metrics:`) is read from the values told to the study;
- offline, a limit on any other metric of the trial's record too (arena, latency with deploy_metrics on). W&B
  tells its study the `metrics:` only, so under W&B put a limited metric in `metrics:` for it to count;
- a limit whose metric a trial did not report counts as met (nothing to hold against it).
Optuna 5 deprecates `constraints_func` for `Trial.set_constraint`, which W&B's scheduler never calls; the sampler
here keeps the former working with the objectives being told.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any

import optuna
from optuna.samplers import TPESampler
from optuna.trial import FrozenTrial, TrialState

from dendrisweep.sweep.storage import RECORD_ATTR

LIMITS: dict[str, float] = {  # metric <= limit (train_trial.py's names; deploy_metrics measures them)
    "tflite_int8_bytes": 65536,  # flash
    "arena_bytes": 16384,  # RAM: peak activation memory of the int8 model
    "tflite_int8_latency_ms": 20.0,  # LiteRT reference kernels on the agent's CPU: a proxy for the device
}


def violations(metrics: Sequence[str], trial: FrozenTrial) -> list[float]:
    """Optuna's constraints: value - limit per limit (<= 0: met)."""
    record = trial.user_attrs.get(RECORD_ATTR) or {}
    found = []
    for name, limit in LIMITS.items():
        value = trial.values[metrics.index(name)] if name in metrics and trial.values else record.get(name)
        found.append(float(value) - limit if isinstance(value, (int, float)) else 0.0)
    return found


class LimitedTPESampler(TPESampler):
    """Multi-objective TPE whose constraints see the objectives being told (Optuna calls a sampler's
    after_trial before it stores them)."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        if values is not None and trial.values is None:
            trial.values = list(values)
        super().after_trial(study, trial, state, values)


def optimizer(sweep: Any) -> optuna.Study:
    """W&B's optimizer factory: a study with one direction per `metrics:` entry (W&B checks they match)."""
    metrics = sweep.config["metrics"]
    names = [m["name"] for m in metrics]
    sampler = LimitedTPESampler(multivariate=True, constraints_func=partial(violations, names))
    study = optuna.create_study(directions=[m.get("goal", "minimize") for m in metrics], sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)  # W&B checks them against `metrics:`
    return study
