"""A sweep's parameters as Optuna distributions, and Optuna's values back as W&B would deliver them.

W&B's semantics live in wandb_params.py; here each parameter gets the Optuna distribution that
searches exactly that space:
- categorical -> CategoricalDistribution (lists and dicts travel as JSON strings: Optuna's choices
  must be scalars); int_uniform -> IntDistribution; uniform -> FloatDistribution; log_uniform_values
  -> log FloatDistribution: drawn uniformly, each is exactly W&B's random method;
- every other distribution (q_*, normal, log_normal, beta, inv_log_uniform_values, categorical with
  probabilities, ...) -> its quantile u in FloatDistribution(0, 1), mapped through W&B's own inverse
  CDF: a uniform u gives exactly W&B's draws, and a model-based sampler searches the same unit cube
  W&B's bayes engine does;
- grid sweeps: every parameter categorical over exactly the points W&B's grid enumerates.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from dendrisweep.errors import UsageError
from dendrisweep.sweep.spec import ParamSpec, SweepSpec
from dendrisweep.sweep.wandb_params import ParamPath, nest

_NATIVE = ("int_uniform", "uniform", "log_uniform_values")
_SCALARS = (type(None), bool, int, float, str)


def encode(value: Any) -> Any:
    """A value as an Optuna categorical choice (lists and dicts as JSON)."""
    return value if isinstance(value, _SCALARS) else json.dumps(value)


def decode(value: Any) -> Any:
    """An Optuna choice back to what W&B would pass (lists and dicts again)."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        return json.loads(value)
    return value


def distribution(param: ParamSpec) -> BaseDistribution:
    name = param.param.distribution
    if name == "categorical":
        return CategoricalDistribution([encode(param.coerce(v)) for v in param.param.values])
    low, high = param.param.min, param.param.max
    if name == "int_uniform" and low is not None and high is not None:
        return IntDistribution(int(low), int(high))
    if name in _NATIVE and low is not None and high is not None:
        return FloatDistribution(float(low), float(high), log=name == "log_uniform_values")
    return FloatDistribution(0.0, 1.0)  # the quantile


def _native(param: ParamSpec) -> bool:
    return param.param.distribution in (*_NATIVE, "categorical")


def search_space(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """The Optuna distributions of every searched parameter."""
    if spec.method == "grid":
        return {name: CategoricalDistribution(points) for name, points in grid(spec).items()}
    return {name: distribution(p) for name, p in spec.searched().items()}


def grid(spec: SweepSpec) -> dict[str, list[Any]]:
    """Every grid point, per parameter, as Optuna choices (W&B's grid is their product)."""
    points = {}
    for name, p in spec.searched().items():
        try:
            points[name] = [encode(p.coerce(v)) for v in p.param.grid_values()]
        except ValueError:
            raise UsageError(f"grid search needs discrete values for {name} (values, int_uniform or "
                             "q_uniform)") from None
    return points


def grid_size(spec: SweepSpec) -> int:
    return math.prod(len(points) for points in grid(spec).values())


def value_of(param: ParamSpec, optuna_value: Any, grid_sweep: bool) -> Any:
    """What the program receives for one parameter's Optuna value."""
    if grid_sweep or _native(param):
        return param.coerce(decode(optuna_value))
    return param.at(float(optuna_value))


def to_optuna(param: ParamSpec, value: Any) -> Any:
    """The inverse: a value W&B proposed (its bayes engine) as this parameter's Optuna value."""
    return encode(param.coerce(value)) if _native(param) else param.param.to_unit(value)


def trial_values(spec: SweepSpec, optuna_params: Mapping[str, Any]) -> dict[ParamPath, Any]:
    """Every parameter a trial receives, by path: the fixed values plus the searched ones."""
    grid_sweep = spec.method == "grid"
    searched = {spec.parameters[name].path: value_of(spec.parameters[name], value, grid_sweep)
                for name, value in optuna_params.items()}
    return {**spec.fixed(), **searched}


def trial_params(spec: SweepSpec, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
    """The config a trial receives, nested as wandb.config holds it."""
    return nest(trial_values(spec, optuna_params))
