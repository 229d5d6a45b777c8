"""Search engines for `method: bayes` (and the plain ones), behind Optuna's sampler interface.

- `auto` (default): Optuna's Gaussian-process sampler while the study is small (best search quality
  in our measurements), then multivariate TPE once suggestions from the GP would get slow
  (GP: ~2.7 s per suggestion at 800 trials; TPE: ~10 ms).
- `tpe`, `gp`, `random`, `grid`: Optuna's own.
- `wandb-bayes`: W&B's open-source engine (the `sweeps` package its server runs), for comparison.
"""
from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GPSampler, GridSampler, RandomSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from dendrisweep.errors import UsageError
from dendrisweep.sweep.optuna_adapter import trial_id
from dendrisweep.sweep.space import grid, search_space, to_optuna, trial_values
from dendrisweep.sweep.spec import SweepSpec
from dendrisweep.sweep.wandb_engine import import_sweeps
from dendrisweep.sweep.wandb_params import wandb_run_config

SAMPLERS = ("auto", "tpe", "gp", "random", "grid", "wandb-bayes")
GP_UNTIL = 200  # finished trials after which `auto` hands over from GP to TPE


class AutoSampler(BaseSampler):
    """GP for small studies, TPE for large ones; each trial keeps the sampler it started with."""

    def __init__(self, seed: int | None = None, gp_until: int = GP_UNTIL) -> None:
        self._gp = GPSampler(seed=seed, warn_independent_sampling=False)
        self._tpe = TPESampler(seed=seed, multivariate=True)
        self._gp_until = gp_until
        self._chosen: dict[int, BaseSampler] = {}
        self._lock = threading.Lock()

    def _for(self, study: Study, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            tid = trial_id(trial)
            if tid not in self._chosen:
                finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
                self._chosen[tid] = self._gp if finished < self._gp_until else self._tpe
            return self._chosen[tid]

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._for(study, trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(study, trial).before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        with self._lock:
            sampler = self._chosen.pop(trial_id(trial), self._tpe)
        sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._gp.reseed_rng()
        self._tpe.reseed_rng()


class WandbBayesSampler(BaseSampler):
    """W&B's bayes engine (`sweeps.next_run`) proposing every parameter of a trial at once."""

    def __init__(self, spec: SweepSpec, seed: int | None = None) -> None:
        self._spec = spec
        self._space = search_space(spec)
        self._fallback = RandomSampler(seed=seed)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        sweeps = import_sweeps()

        worst = -math.inf if self._spec.maximize else math.inf
        runs = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
            if not set(self._space) <= set(t.params):
                continue
            run = sweeps.SweepRun(name=str(t.number), state=sweeps.RunState.finished,
                                  config=wandb_run_config(trial_values(self._spec, t.params)))
            # sweeps 0.2 drops the `summary_metrics=` keyword: set the attribute itself.
            run.summary_metrics = {self._spec.metric: t.value if t.value is not None else worst}
            runs.append(run)
        config = {k: v for k, v in self._spec.raw.items() if k in ("method", "metric", "parameters")}
        config["method"] = "bayes"
        suggestion = sweeps.next_run(config, runs, validate=False)
        assert suggestion is not None
        proposed = {name: _at_path(suggestion.config, self._spec.parameters[name].path) for name in search_space}
        return {name: to_optuna(self._spec.parameters[name], value) for name, value in proposed.items()}

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)


def _at_path(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    """A value in a W&B run config ({top: {"value": nested}}) by its parameter path."""
    value = config[path[0]]["value"]
    for key in path[1:]:
        value = value[key]
    return value


class _Grid(GridSampler):
    """Optuna's grid sampler without its `study.stop()` once the grid is used up: that call only works
    inside `study.optimize`, and our agents stop at the budget (the grid's size) themselves."""

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        return None


def make_sampler(name: str | None, spec: SweepSpec, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """The sampler a sweep asks for (`--sampler` wins over the YAML's method)."""
    name = name or {"bayes": "auto", "random": "random", "grid": "grid", "custom": "auto"}[spec.method]
    if spec.multi_objective and name in ("grid", "wandb-bayes"):
        raise UsageError(f"--sampler {name}: searches a single objective; this sweep has {len(spec.objectives)}")
    if name == "auto":
        return AutoSampler(seed=seed)
    if name == "tpe":
        return TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return GPSampler(seed=seed, warn_independent_sampling=False)
    if name == "random":
        return RandomSampler(seed=seed)
    if name == "grid":
        return _Grid(grid(spec), seed=seed)
    if name == "wandb-bayes":
        return WandbBayesSampler(spec, seed=seed)
    raise UsageError(f"--sampler: {name!r} is not one of {', '.join(SAMPLERS)}")
