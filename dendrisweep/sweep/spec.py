"""Sweep YAML: load it, check it against the registry and W&B's own schema, describe it.

A sweep file must stay a valid W&B sweep config (`wandb sweep` takes it unchanged), and every
parameter must be a registry setting whose values the trial will accept. Both are checked before
anything runs; the first problem is reported as `file: key: problem` (UsageError, exit 2).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dendrisweep.config import load_mapping_file
from dendrisweep.errors import UsageError
from dendrisweep.settings import Setting, lookup
from dendrisweep.sweep.wandb_engine import import_sweeps

METHODS = ("bayes", "random", "grid")
GOALS = ("maximize", "minimize")
# What a trial reports in result.json / its W&B summary that a sweep can optimise.
METRICS = ("best_val_acc", "test_acc", "val_loss", "test_loss", "params", "macs", "dendrites_added")
PER_EPOCH_METRICS = ("best_val_acc",)  # also logged every epoch, so hyperband can prune on it
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
# W&B distributions the offline engine can search; the unbounded ones (normal, beta...) it cannot.
_RANGES = {"int_uniform": "int", "uniform": "float", "q_uniform": "float", "log_uniform_values": "log"}
_W_AND_B_ONLY = ("normal", "q_normal", "log_normal", "q_log_normal", "beta", "q_beta", "inv_log_uniform_values",
                 "q_log_uniform_values")
_DEPRECATED = {"log_uniform": "log_uniform_values", "q_log_uniform": "q_log_uniform_values",
               "inv_log_uniform": "inv_log_uniform_values"}  # W&B's schema rejects these too

Kind = Literal["value", "values", "int", "float"]


@dataclass(frozen=True)
class ParamSpec:
    """One swept (or fixed) parameter, already checked against its registry setting."""

    name: str
    kind: Kind
    value: Any = None  # kind == "value"
    values: tuple[Any, ...] = ()  # kind == "values"
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False


@dataclass(frozen=True)
class Hyperband:
    min_iter: int
    max_iter: int | None
    eta: int


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: what to search, how, and how to launch each trial."""

    path: Path
    raw: dict[str, Any]
    method: str
    metric: str
    goal: str
    parameters: dict[str, ParamSpec]
    program: str
    command: list[str]
    run_cap: int | None = None
    target: float | None = None
    hyperband: Hyperband | None = None
    project: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def maximize(self) -> bool:
        return self.goal == "maximize"

    def fixed(self) -> dict[str, Any]:
        return {n: p.value for n, p in self.parameters.items() if p.kind == "value"}

    def searched(self) -> dict[str, ParamSpec]:
        return {n: p for n, p in self.parameters.items() if p.kind != "value"}


def _number(where: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise UsageError(f"{where}: expected a number, got {raw!r}")
    return float(raw)


def _coerce(setting: Setting, raw: Any, where: str) -> Any:
    try:
        return setting.coerce(raw)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _range(name: str, setting: Setting, body: Mapping[str, Any], where: str) -> ParamSpec:
    distribution = body.get("distribution") or (
        "int_uniform" if all(isinstance(body.get(k), int) for k in ("min", "max")) else "uniform")
    if distribution in _DEPRECATED:
        raise UsageError(f"{where}: distribution '{distribution}' takes base-e exponents and is deprecated by W&B; "
                         f"use {_DEPRECATED[distribution]}")
    if distribution in _W_AND_B_ONLY:
        raise UsageError(f"{where}: distribution '{distribution}' is not supported by the offline engine "
                         f"(use one of {', '.join(_RANGES)} or values)")
    if distribution not in _RANGES:
        raise UsageError(f"{where}: unknown distribution '{distribution}'")
    for key in ("min", "max"):
        if key not in body:
            raise UsageError(f"{where}: distribution '{distribution}' needs '{key}'")
    low, high = _number(f"{where}.min", body["min"]), _number(f"{where}.max", body["max"])
    if low >= high:
        raise UsageError(f"{where}: min {body['min']} is not less than max {body['max']}")
    shape = _RANGES[distribution]
    if shape == "log" and low <= 0:
        raise UsageError(f"{where}: log distributions need min > 0")
    step = _number(f"{where}.q", body["q"]) if distribution == "q_uniform" and "q" in body else None
    if distribution == "q_uniform" and step is None:
        step = 1.0
    if setting.kind not in ("int", "float"):
        raise UsageError(f"{where}: {name} is a {setting.kind} setting; give it 'values', not a distribution")
    integral = setting.kind == "int"
    if integral and (shape != "int" and not (step is not None and step == int(step) and low == int(low))):
        raise UsageError(f"{where}: {name} is an integer setting; use int_uniform, q_uniform with an integer "
                         "q, or values")
    for bound in (low, high):
        _coerce(setting, int(bound) if integral else bound, where)
    kind: Kind = "int" if integral else "float"
    return ParamSpec(name, kind, low=low, high=high, step=step, log=shape == "log")


def _parameter(name: str, body: Any, where: str) -> ParamSpec:
    try:
        setting = lookup(name)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if setting.name != name:
        raise UsageError(f"{where}: use the registry name '{setting.name}' (W&B passes the key as is)")
    if not isinstance(body, dict):
        raise UsageError(f"{where}: expected a mapping such as {{values: [...]}}, got {body!r}")
    if "parameters" in body:
        raise UsageError(f"{where}: nested parameters are not supported; sweep registry settings directly")
    if "value" in body:
        return ParamSpec(name, "value", value=_coerce(setting, body["value"], f"{where}.value"))
    if "values" in body:
        values = body["values"]
        if not isinstance(values, list) or not values:
            raise UsageError(f"{where}.values: expected a non-empty list")
        coerced = tuple(_coerce(setting, v, f"{where}.values") for v in values)
        if len({repr(v) for v in coerced}) != len(coerced):
            raise UsageError(f"{where}.values: lists the same value twice")
        return ParamSpec(name, "values", values=coerced)
    if "min" in body or "max" in body or "distribution" in body:
        return _range(name, setting, body, where)
    raise UsageError(f"{where}: needs 'value', 'values' or a distribution with min/max")


def _hyperband(body: Any, where: str) -> Hyperband:
    if not isinstance(body, dict) or body.get("type") != "hyperband":
        raise UsageError(f"{where}: only {{type: hyperband, ...}} is supported")
    eta = body.get("eta", 3)
    if not isinstance(eta, int) or eta < 2:
        raise UsageError(f"{where}.eta: expected an integer >= 2, got {eta!r}")
    if "min_iter" in body:
        min_iter = body["min_iter"]
        if not isinstance(min_iter, int) or min_iter < 1:
            raise UsageError(f"{where}.min_iter: expected an integer >= 1, got {min_iter!r}")
        return Hyperband(min_iter, body.get("max_iter"), eta)
    if "max_iter" in body and "s" in body:
        return Hyperband(max(1, int(body["max_iter"] / eta ** body["s"])), body["max_iter"], eta)
    raise UsageError(f"{where}: hyperband needs min_iter, or max_iter and s")


def _wandb_schema_problem(raw: dict[str, Any]) -> str | None:
    """The first violation of W&B's sweep schema (the `sweeps` package W&B's server uses)."""
    sweeps = import_sweeps()
    checked = {k: v for k, v in raw.items() if k != "run_cap"}  # run_cap postdates sweeps 0.2's schema
    try:
        problems = sweeps.schema_violations_from_proposed_config(checked)
    except ValueError as exc:
        return str(exc)
    return problems[0] if problems else None


def parse_sweep(raw: dict[str, Any], path: Path) -> SweepSpec:
    """Check a loaded sweep config; every problem is a UsageError naming the key."""
    where = str(path)
    warnings: list[str] = []
    method = raw.get("method")
    if method not in METHODS:
        raise UsageError(f"{where}: method: {method!r} is not one of {', '.join(METHODS)}")
    metric = raw.get("metric")
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        raise UsageError(f"{where}: metric: expected {{name: ..., goal: maximize|minimize}}")
    if metric["name"] not in METRICS:
        raise UsageError(f"{where}: metric.name: {metric['name']!r} is not reported by train_trial.py "
                         f"(one of {', '.join(METRICS)})")
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        raise UsageError(f"{where}: metric.goal: {goal!r} is not one of {', '.join(GOALS)}")
    if "goal" not in metric:
        warnings.append("metric.goal is not set: W&B minimises by default")
    parameters = raw.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise UsageError(f"{where}: parameters: expected a non-empty mapping of settings to search")
    specs = {str(n): _parameter(str(n), body, f"{where}: parameters.{n}") for n, body in parameters.items()}
    if not any(p.kind != "value" for p in specs.values()):
        raise UsageError(f"{where}: parameters: nothing to search (every parameter has a single value)")
    if method == "grid" and any(p.kind == "float" and p.step is None for p in specs.values()):
        raise UsageError(f"{where}: method grid needs values, int_uniform or q_uniform for every parameter")
    program = raw.get("program")
    if not isinstance(program, str) or not program:
        raise UsageError(f"{where}: program: expected the training script, e.g. train_trial.py")
    command = raw.get("command", DEFAULT_COMMAND)
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise UsageError(f"{where}: command: expected a list of strings")
    if "${program}" not in command:
        raise UsageError(f"{where}: command: must contain ${{program}} so every agent runs {program}")
    run_cap = raw.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        raise UsageError(f"{where}: run_cap: expected a positive integer, got {run_cap!r}")
    hyperband = _hyperband(raw["early_terminate"], f"{where}: early_terminate") if "early_terminate" in raw else None
    if hyperband and metric["name"] not in PER_EPOCH_METRICS:
        raise UsageError(f"{where}: early_terminate: hyperband needs a metric logged every epoch "
                         f"({', '.join(PER_EPOCH_METRICS)})")
    problem = _wandb_schema_problem(raw)
    if problem:
        raise UsageError(f"{where}: W&B sweep schema: {problem}")
    target = metric.get("target")
    return SweepSpec(path=path, raw=raw, method=method, metric=metric["name"], goal=goal, parameters=specs,
                     program=program, command=list(command), run_cap=run_cap,
                     target=float(target) if target is not None else None, hyperband=hyperband,
                     project=raw.get("project"), warnings=warnings)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep YAML file."""
    path = Path(path)
    return parse_sweep(load_mapping_file(path, "sweep file", allow_empty=False), path)
