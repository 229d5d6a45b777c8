"""Sweep YAML: load it, check it against W&B's own schema (and, for our program, the registry), describe it.

A sweep file must stay a valid W&B sweep config (`wandb sweep` takes it unchanged). Its parameters
follow W&B's semantics exactly (wandb_params.py: every distribution, nested parameters, defaults).
When the sweep runs our `train_trial.py`, every parameter must also be a registry setting whose
values the trial accepts, and the metric one it reports; any other program is checked by W&B's
schema alone, and receives its config exactly as `wandb agent` would deliver it. Everything is
checked before anything runs; the first problem is reported as `file: key: problem` (UsageError,
exit 2).
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dendrisweep.config import load_mapping_file
from dendrisweep.contract import DEPLOY_METRICS, RESULT_METRICS
from dendrisweep.errors import UsageError
from dendrisweep.schedule import KNOBS, cap_falls_short, epochs_needed
from dendrisweep.settings import Setting, defaults, lookup
from dendrisweep.sweep.wandb_engine import import_sweeps
from dendrisweep.sweep.wandb_params import DEPRECATED, ParamPath, WandbParam, flatten

METHODS = ("bayes", "random", "grid", "custom")  # custom: a scheduler's own search (sweep/scheduler.py)
GOALS = ("maximize", "minimize")
ENGINES = ("optuna", "ax", "wandb")  # scheduler.engine, W&B's schema since wandb/sweeps #135
SCHEDULER_KEYS = ("engine", "source", "optimizer", "search_space")
OUR_PROGRAM = "train_trial.py"
# What train_trial.py reports in result.json / its W&B summary that a sweep can optimise.
METRICS = tuple(m for m in RESULT_METRICS if m != "epochs_run")
PER_EPOCH_METRICS = ("best_val_acc",)  # also logged every epoch, so hyperband can prune on it
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]
_REPLACEMENT = {"log_uniform": "log_uniform_values", "q_log_uniform": "q_log_uniform_values",
                "inv_log_uniform": "inv_log_uniform_values"}
_EDGE = 1e-9  # quantiles at which a registry setting's bounds are checked against a distribution


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of the sweep: W&B's semantics, and (for our program) its registry setting."""

    path: ParamPath
    param: WandbParam
    setting: Setting | None = None

    @property
    def name(self) -> str:
        """The name in the study: the path joined with dots (`optimizer.lr`)."""
        return ".".join(self.path)

    @property
    def kind(self) -> str:
        return self.param.kind

    def coerce(self, value: Any) -> Any:
        """A W&B value as the program receives it (our program: the registry's type)."""
        return value if self.setting is None else self.setting.coerce(value)

    @property
    def value(self) -> Any:
        return self.coerce(self.param.value)

    def at(self, u: float) -> Any:
        """The value at quantile u: drawing u uniformly gives exactly W&B's random method."""
        return self.coerce(self.param.from_unit(u))


@dataclass(frozen=True)
class Hyperband:
    min_iter: int
    max_iter: int | None
    eta: float


@dataclass(frozen=True)
class Scheduler:
    """`scheduler:` (W&B's multi-objective sweeps): which engine searches, and the user's own file of
    functions: `optimizer` builds its study from W&B's SweepInfo, `search_space` suggests a trial's config."""

    engine: str
    source: str | None = None
    optimizer: str | None = None
    search_space: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: what to search, how, and how to launch each trial."""

    path: Path
    raw: dict[str, Any]
    method: str
    metric: str | None  # None: a grid or random sweep without a metric (W&B allows it)
    goal: str
    parameters: dict[str, ParamSpec]
    program: str | None
    command: list[str]
    run_cap: int | None = None
    target: float | None = None
    hyperband: Hyperband | None = None
    project: str | None = None
    impute: str = "worst"  # metric.impute: what a run that crashed counts as (latest | best | worst)
    warnings: list[str] = field(default_factory=list)
    # every objective in order, (name, goal): `metrics:` (multi-objective), or `metric:` alone; `metric`
    # and `goal` above are the first of them
    objectives: tuple[tuple[str, str], ...] = ()
    scheduler: Scheduler | None = None

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def maximize(self) -> bool:
        return self.goal == "maximize"

    @property
    def ours(self) -> bool:
        """The sweep runs train_trial.py: registry names, its metrics, its trial contract."""
        return runs_our_program(self.program, self.command)

    def fixed(self) -> dict[ParamPath, Any]:
        return {p.path: p.value for p in self.parameters.values() if p.kind == "constant"}

    def searched(self) -> dict[str, ParamSpec]:
        return {n: p for n, p in self.parameters.items() if p.kind != "constant"}


def runs_our_program(program: Any, command: Any) -> bool:
    """train_trial.py is the program (or the command runs it); a file naming no program is taken
    for one of ours, so its checks name what is wrong with it rather than only the missing program."""
    parts = [program, *(command if isinstance(command, list) else [])]
    return program is None or any(isinstance(part, str) and Path(part).name == OUR_PROGRAM for part in parts)


def _coerce(setting: Setting, raw: Any, where: str) -> Any:
    try:
        return setting.coerce(raw)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _wandb_param(path: ParamPath, body: Any, where: str) -> WandbParam:
    if not isinstance(body, dict):
        raise UsageError(f"{where}: expected a mapping such as {{values: [...]}}, got {body!r}")
    distribution = body.get("distribution")
    if distribution in DEPRECATED:
        raise UsageError(f"{where}: distribution '{distribution}' takes base-e exponents and is deprecated by W&B; "
                         f"use {_REPLACEMENT[distribution]}")
    if "value" not in body and "values" not in body and "distribution" not in body and not (
            "min" in body or "max" in body):
        raise UsageError(f"{where}: needs 'value', 'values' or a distribution with min/max")
    try:
        return WandbParam.from_spec(path, body)
    except ValueError as exc:  # its message starts with the path, which `where` already names
        raise UsageError(f"{where}: {str(exc).removeprefix('.'.join(path) + ': ')}") from None


def _registry_setting(name: str, param: WandbParam, body: Mapping[str, Any], where: str) -> Setting:
    """Our program: the parameter must be a registry setting, and every value W&B can draw one it accepts."""
    try:
        setting = lookup(name)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if setting.name != name:
        raise UsageError(f"{where}: use the registry name '{setting.name}' (W&B passes the key as is)")
    if param.kind == "constant":
        _coerce(setting, param.value, f"{where}.value")
    elif param.distribution.startswith("categorical"):
        coerced = [_coerce(setting, v, f"{where}.values") for v in param.values]
        if len({repr(v) for v in coerced}) != len(coerced):
            raise UsageError(f"{where}.values: lists the same value twice")
    else:
        if setting.kind not in ("int", "float"):
            raise UsageError(f"{where}: {name} is a {setting.kind} setting; give it 'values', not a distribution")
        if setting.kind == "int" and param.kind != "int":
            raise UsageError(f"{where}: {name} is an integer setting; use int_uniform, q_uniform with an integer "
                             "q, or values")
        for u in (_EDGE, 1 - _EDGE):
            value = param.from_unit(u)
            try:
                setting.coerce(value)
            except UsageError as exc:
                raise UsageError(f"{where}: distribution '{param.distribution}' can draw {value:g}, which "
                                 f"{name} does not accept ({exc})") from None
    return setting


def _parameters(raw: Any, where: str, ours: bool) -> dict[str, ParamSpec]:
    if not isinstance(raw, dict) or not raw:
        raise UsageError(f"{where}: parameters: expected a non-empty mapping of settings to search")
    if ours:
        nested = next((n for n, b in raw.items() if isinstance(b, dict) and "parameters" in b), None)
        if nested is not None:
            raise UsageError(f"{where}: parameters.{nested}: nested parameters are not supported by "
                             f"{OUR_PROGRAM}; sweep registry settings directly")
    try:
        leaves = flatten(raw)
    except ValueError as exc:
        raise UsageError(f"{where}: parameters: {exc}") from None
    specs: dict[str, ParamSpec] = {}
    for path, body in leaves.items():
        here = f"{where}: parameters.{'.'.join(path)}"
        param = _wandb_param(path, body, here)
        setting = _registry_setting(path[0], param, body, here) if ours else None
        spec = ParamSpec(path, param, setting)
        specs[spec.name] = spec
    return specs


def _hyperband(body: Any, where: str) -> Hyperband:
    if not isinstance(body, dict) or body.get("type") != "hyperband":
        raise UsageError(f"{where}: only {{type: hyperband, ...}} is supported")
    eta = body.get("eta", 3)
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or eta <= 1:
        raise UsageError(f"{where}.eta: expected a number > 1, got {eta!r}")
    if "min_iter" in body:
        min_iter = body["min_iter"]
        if not isinstance(min_iter, int) or min_iter < 1:
            raise UsageError(f"{where}.min_iter: expected an integer >= 1, got {min_iter!r}")
        return Hyperband(min_iter, body.get("max_iter"), eta)
    if "max_iter" in body and "s" in body:
        return Hyperband(max(1, int(body["max_iter"] / eta ** body["s"])), body["max_iter"], eta)
    raise UsageError(f"{where}: hyperband needs min_iter, or max_iter and s")


def _wandb_schema_problem(raw: dict[str, Any]) -> str | None:
    """The first violation of W&B's sweep schema (the `sweeps` package W&B's server uses). Its release
    (0.2) predates run_cap, hyperband's strict, `method: custom`, `metrics:` and `scheduler:` (#135-#138):
    those are checked by parse_sweep, and each item of `metrics:` against the schema's own `metric`."""
    sweeps = import_sweeps()
    checked = {k: v for k, v in raw.items() if k not in ("run_cap", "metrics", "scheduler")}
    if checked.get("method") == "custom":
        checked["method"] = "random"
    if not checked.get("parameters"):  # scheduler.search_space defines them
        checked["parameters"] = {"_": {"value": 0}}
    if isinstance(checked.get("early_terminate"), dict):
        checked["early_terminate"] = {k: v for k, v in checked["early_terminate"].items() if k != "strict"}
    try:
        problems = [*sweeps.schema_violations_from_proposed_config(checked),
                    *(f"metrics[{i}]: {problem}" for i, item in enumerate(raw.get("metrics") or [])
                      for problem in sweeps.schema_violations_from_proposed_config(
                          {"method": "random", "parameters": {"_": {"value": 0}}, "metric": item}))]
    except ValueError as exc:
        return str(exc)
    return problems[0] if problems else None


def _metric(raw: dict[str, Any], method: str, ours: bool, where: str, warnings: list[str]) -> tuple[str | None, str]:
    metric = raw.get("metric")
    if metric is None and method in ("grid", "random") and "early_terminate" not in raw:
        return None, "minimize"  # W&B runs grid and random sweeps without a metric
    if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
        raise UsageError(f"{where}: metric: expected {{name: ..., goal: maximize|minimize}}")
    _check_metric_name(metric["name"], "metric.name", ours, where)
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        raise UsageError(f"{where}: metric.goal: {goal!r} is not one of {', '.join(GOALS)}")
    if "goal" not in metric:
        warnings.append("metric.goal is not set: W&B minimises by default")
    return metric["name"], goal


def _check_metric_name(name: str, key: str, ours: bool, where: str) -> None:
    if ours and name not in METRICS:
        raise UsageError(f"{where}: {key}: {name!r} is not reported by {OUR_PROGRAM} (one of {', '.join(METRICS)})")


def _objectives(raw: dict[str, Any], method: str, ours: bool, where: str,
                warnings: list[str]) -> tuple[tuple[str, str], ...] | None:
    """`metrics:` as W&B's schema has it since wandb/sweeps #135 (its own messages for the rules it adds), as
    (name, goal) pairs; None for a sweep with `metric:` or none."""
    if "metrics" not in raw:
        return None
    if "metric" in raw:
        raise UsageError(f"{where}: `metric` and `metrics` cannot both be set: use `metric` for a single "
                         "objective, or `metrics` for multi-objective optimization.")
    if method != "custom":
        raise UsageError(f"{where}: `metrics` requires `method: custom` (got `method: {method}`): multi-objective "
                         "optimization is only supported with a custom scheduler.")
    metrics = raw["metrics"]
    if not isinstance(metrics, list) or len(metrics) < 2 or not all(
            isinstance(m, dict) and isinstance(m.get("name"), str) for m in metrics):
        raise UsageError(f"{where}: metrics: expected a list of at least 2 {{name: ..., goal: maximize|minimize}}")
    objectives = []
    for i, metric in enumerate(metrics):
        _check_metric_name(metric["name"], f"metrics[{i}].name", ours, where)
        goal = metric.get("goal", "minimize")
        if goal not in GOALS:
            raise UsageError(f"{where}: metrics[{i}].goal: {goal!r} is not one of {', '.join(GOALS)}")
        if "goal" not in metric:
            warnings.append(f"metrics[{i}].goal is not set: W&B minimises by default")
        objectives.append((metric["name"], goal))
    if len({name for name, _ in objectives}) < len(objectives):
        raise UsageError(f"{where}: metrics: names the same metric twice")
    if any("target" in m or "impute" in m for m in metrics):
        warnings.append("metrics[].target and impute are not applied offline (as W&B's Optuna scheduler: a failed "
                        "run is told as failed)")
    return tuple(objectives)


def _scheduler(raw: dict[str, Any], method: str, where: str) -> Scheduler | None:
    """`scheduler:`, checked by W&B's rules (wandb/sweeps #135-#138 and wandb 0.31's client-side scheduler)."""
    body = raw.get("scheduler")
    if body is None:
        return None
    if not isinstance(body, dict) or body.get("engine") not in ENGINES:
        raise UsageError(f"{where}: scheduler: expected {{engine: {' | '.join(ENGINES)}, source, optimizer, "
                         "search_space}")
    unknown = sorted(set(body) - set(SCHEDULER_KEYS))
    if unknown:
        raise UsageError(f"{where}: scheduler.{unknown[0]}: not a scheduler key (one of {', '.join(SCHEDULER_KEYS)})")
    for key in SCHEDULER_KEYS[1:]:
        if key in body and not isinstance(body[key], str):
            raise UsageError(f"{where}: scheduler.{key}: expected a string, got {body[key]!r}")
        if key in ("optimizer", "search_space") and key in body and "source" not in body:
            raise UsageError(f"{where}: scheduler.{key}: needs scheduler.source, the file that defines it")
    if "early_terminate" in raw:
        raise UsageError(f"{where}: `early_terminate` cannot be used together with `scheduler`: early termination "
                         "must be implemented by the custom scheduler itself.")
    if isinstance(raw.get("controller"), dict) and raw["controller"].get("type") == "local":
        raise UsageError(f"{where}: `controller: type:local` cannot be used together with `scheduler`: use "
                         "`scheduler` instead of `controller`.")
    engine = body["engine"]
    if engine == "wandb" and method == "custom":
        raise UsageError(f"{where}: `scheduler.engine: wandb` does not support `method: custom`. supported methods "
                         "are: grid, bayes, random")
    if engine == "ax":
        raise UsageError(f"{where}: scheduler.engine: ax is not run offline (W&B's Ax scheduler needs ax-platform "
                         "and a W&B server); use engine: optuna")
    if engine == "optuna" and method != "custom":
        raise UsageError(f"{where}: scheduler.engine: optuna searches with `method: custom` (got `method: {method}`)")
    source = body.get("source")
    if source is not None and not Path(source).is_file():
        raise UsageError(f"{where}: scheduler.source: no file {source} (W&B reads it from the working directory)")
    return Scheduler(engine, source, body.get("optimizer"), body.get("search_space"))


def _impute(raw: dict[str, Any], where: str) -> str:
    impute = raw["metric"].get("impute", "worst") if isinstance(raw.get("metric"), dict) else "worst"
    if impute not in ("latest", "best", "worst"):
        raise UsageError(f"{where}: metric.impute: {impute!r} is not one of latest, best, worst")
    return str(impute)


CAP_DRAWS = 400  # configs drawn from a sweep's space to measure the share its epoch cap may cut short


def _cap_warning(specs: dict[str, ParamSpec]) -> str | None:
    """Our program: the share of the search space whose epoch cap may stop a trial before PAI finishes
    (schedule.py), measured on configs drawn as W&B's random method draws them, with the worst one."""
    relevant = ("dendrites", "epochs", "switch_mode", *{k for knobs in KNOBS.values() for k in knobs})
    params = [p for p in specs.values() if p.path[0] in relevant]
    rng = random.Random(0)
    base, short = defaults(), []
    for _ in range(CAP_DRAWS):
        config = {**base, **{p.path[0]: p.value if p.kind == "constant" else p.at(rng.random()) for p in params}}
        if cap_falls_short(config) is not None:
            short.append(config)
    if not short:
        return None
    worst = max(short, key=lambda c: epochs_needed(c) - c["epochs"])
    return (f"{len(short) / CAP_DRAWS:.0%} of this search space may be stopped by the epoch cap before PAI finishes "
            f"(raise epochs, or narrow the dendrite count and switch interval); the worst: {cap_falls_short(worst)}")


def parse_sweep(raw: dict[str, Any], path: Path) -> SweepSpec:
    """Check a loaded sweep config; every problem is a UsageError naming the key."""
    where = str(path)
    warnings: list[str] = []
    method = raw.get("method")
    if method not in METHODS:
        raise UsageError(f"{where}: method: {method!r} is not one of {', '.join(METHODS)}")
    program = raw.get("program")
    command = raw.get("command", DEFAULT_COMMAND)
    ours = runs_our_program(program, command)
    scheduler = _scheduler(raw, method, where)
    objectives = _objectives(raw, method, ours, where, warnings)
    if objectives is None:
        metric, goal = _metric(raw, method, ours, where, warnings)
        objectives = ((metric, goal),) if metric is not None else ()
    else:
        metric, goal = objectives[0]
    defined_by_run = scheduler is not None and scheduler.search_space is not None
    if defined_by_run and not raw.get("parameters"):
        specs: dict[str, ParamSpec] = {}  # scheduler.search_space suggests every parameter
    else:
        specs = _parameters(raw.get("parameters"), where, ours)
    deployed = [name for name, _ in objectives if name in DEPLOY_METRICS]
    switch = specs.get("deploy_metrics")
    if ours and deployed and not defined_by_run and (switch is None or switch.kind != "constant" or not switch.value):
        raise UsageError(f"{where}: {deployed[0]} is measured on the deployed model only with deploy_metrics on: add "
                         "parameters.deploy_metrics: {value: true}")
    if ours and not defined_by_run and not any(p.kind != "constant" for p in specs.values()):
        raise UsageError(f"{where}: parameters: nothing to search (every parameter has a single value)")
    if method == "grid":
        for p in specs.values():
            try:
                p.param.grid_values()
            except ValueError:
                raise UsageError(f"{where}: method grid needs values, int_uniform or q_uniform for every "
                                 f"parameter ({p.name} is {p.param.distribution})") from None
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise UsageError(f"{where}: command: expected a list of strings")
    # W&B runs a command without ${program} as it stands; our sweeps must run train_trial.py.
    if (ours or "${program}" in command) and (not isinstance(program, str) or not program):
        raise UsageError(f"{where}: program: expected the training script, e.g. {OUR_PROGRAM}")
    if ours and "${program}" not in command:
        raise UsageError(f"{where}: command: must contain ${{program}} so every agent runs {program}")
    run_cap = raw.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1):
        raise UsageError(f"{where}: run_cap: expected a positive integer, got {run_cap!r}")
    hyperband = _hyperband(raw["early_terminate"], f"{where}: early_terminate") if "early_terminate" in raw else None
    if hyperband and ours and metric not in PER_EPOCH_METRICS:
        raise UsageError(f"{where}: early_terminate: hyperband needs a metric logged every epoch "
                         f"({', '.join(PER_EPOCH_METRICS)})")
    if hyperband and isinstance(raw["early_terminate"], dict) and raw["early_terminate"].get("strict"):
        warnings.append("early_terminate.strict is not applied offline: runs are pruned as hyperband without it")
    problem = _wandb_schema_problem(raw)
    if problem:
        raise UsageError(f"{where}: W&B sweep schema: {problem}")
    cap = _cap_warning(specs) if ours else None
    if cap is not None:
        warnings.append(cap)
    target = raw["metric"].get("target") if isinstance(raw.get("metric"), dict) else None
    return SweepSpec(path=path, raw=raw, method=method, metric=metric, goal=goal, parameters=specs,
                     program=program, command=list(command), run_cap=run_cap,
                     target=float(target) if target is not None else None, hyperband=hyperband,
                     project=raw.get("project"), impute=_impute(raw, where), warnings=warnings,
                     objectives=objectives, scheduler=scheduler)


def ordinary(spec: SweepSpec) -> dict[str, Any]:
    """What a sweep searches besides dendrites: for our program every parameter but PAI's own settings
    (and the `dendrites` switch), for another program every parameter but `dendrites`."""
    def dendritic(name: str) -> bool:
        return name == "dendrites" or (spec.ours and lookup(name).group == "pai")

    return {".".join(path): body for path, body in flatten(spec.raw["parameters"]).items() if not dendritic(path[0])}


def differences(dendritic: SweepSpec, baseline: SweepSpec) -> list[str]:
    """How two sweeps compared by a verdict searched differently (their ordinary settings, ranges and
    budgets): empty when the comparison gave both sides the same search."""
    ours, theirs = ordinary(dendritic), ordinary(baseline)
    found = [f"{name}: {_short(ours.get(name, 'not searched'))} vs {_short(theirs.get(name, 'not searched'))}"
             for name in sorted(set(ours) | set(theirs)) if ours.get(name) != theirs.get(name)]
    if dendritic.run_cap != baseline.run_cap:
        found.append(f"run_cap: {dendritic.run_cap} vs {baseline.run_cap}")
    return found


def _short(spec: Any) -> str:
    if not isinstance(spec, Mapping):
        return str(spec)
    return "{" + ", ".join(f"{k}: {v}" for k, v in spec.items()) + "}"


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep YAML file."""
    path = Path(path)
    return parse_sweep(load_mapping_file(path, "sweep file", allow_empty=False), path)
