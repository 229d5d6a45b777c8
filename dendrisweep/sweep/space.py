"""Translate a sweep's parameters into Optuna distributions, and Optuna values back.

values -> categorical, int_uniform -> int, uniform -> float, q_uniform -> stepped, log_uniform*
-> log float. Optuna's categorical choices must be scalars, so list-valued settings (the
improvement threshold schedule) travel as JSON strings and are decoded before a trial sees them.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from dendrisweep.errors import UsageError
from dendrisweep.sweep.spec import ParamSpec, SweepSpec


def encode(value: Any) -> Any:
    """A setting value as an Optuna categorical choice."""
    return json.dumps(value) if isinstance(value, list) else value


def decode(value: Any) -> Any:
    """An Optuna value back to what W&B would pass (lists stay lists)."""
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return value


def distribution(param: ParamSpec) -> BaseDistribution:
    if param.kind == "values":
        return CategoricalDistribution([encode(v) for v in param.values])
    if param.kind == "int":
        return IntDistribution(int(param.low), int(param.high), step=int(param.step or 1))
    return FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def search_space(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """The Optuna distributions of every searched parameter."""
    return {name: distribution(p) for name, p in spec.searched().items()}


def grid(spec: SweepSpec) -> dict[str, list[Any]]:
    """Every point of a grid sweep, per parameter (ranges must be discrete)."""
    points: dict[str, list[Any]] = {}
    for name, p in spec.searched().items():
        if p.kind == "values":
            points[name] = [encode(v) for v in p.values]
        elif p.kind == "int":
            points[name] = list(range(int(p.low), int(p.high) + 1, int(p.step or 1)))
        elif p.step is None:
            raise UsageError(f"grid search needs discrete values for {name} (values, int_uniform or q_uniform)")
        else:
            points[name] = [float(v) for v in np.arange(p.low, p.high + p.step / 2, p.step)]
    return points


def trial_params(spec: SweepSpec, optuna_params: Mapping[str, Any]) -> dict[str, Any]:
    """The full parameter set a trial receives: the fixed values plus the searched ones, decoded."""
    return {**spec.fixed(), **{name: decode(v) for name, v in optuna_params.items()}}
