"""wandb_params against W&B's own engine (`sweeps`): same inference, defaults, draws, grids and run configs."""
from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from dendrisweep.sweep.wandb_engine import import_sweeps
from dendrisweep.sweep.wandb_params import (
    DISTRIBUTIONS,
    ParamPath,
    WandbParam,
    flatten,
    grid_points,
    leaf_params,
    nest,
    wandb_run_config,
)
from tests.helpers import CASES, CONTINUOUS, DRAWS, engine_draws, p_value

sweeps = import_sweeps()  # quietly: it prints pydantic deprecation warnings on import
from sweeps.config import SweepConfig  # noqa: E402  (after the quiet import)
from sweeps.grid_search import yaml_hash  # noqa: E402
from sweeps.params import HyperParameter, HyperParameterSet  # noqa: E402

N = DRAWS
ALPHA = 0.01

ENGINE_TYPE = {
    "param_single_value": "constant", "param_categorical": "categorical",
    "param_categorical_w_probabilities": "categorical_w_probabilities", "param_int_uniform": "int_uniform",
    "param_uniform": "uniform", "param_quniform": "q_uniform", "param_loguniform": "log_uniform",
    "param_inv_loguniform": "inv_log_uniform", "param_qloguniform": "q_log_uniform",
    "param_loguniform_v2": "log_uniform_values", "param_inv_loguniform_v2": "inv_log_uniform_values",
    "param_qloguniform_v2": "q_log_uniform_values", "param_normal": "normal", "param_qnormal": "q_normal",
    "param_lognormal": "log_normal", "param_qlognormal": "q_log_normal", "param_beta": "beta", "param_qbeta": "q_beta",
}

def _our_draws(spec: Mapping[str, Any], seed: int) -> list[Any]:
    param = WandbParam.from_spec("x", spec)
    return [param.from_unit(u) for u in np.random.default_rng(seed).random(N)]


@pytest.mark.parametrize("name", list(CASES))
def test_draws_match_the_engines_random_method(name: str) -> None:
    spec, seed = CASES[name], list(CASES).index(name)
    ours, theirs = _our_draws(spec, seed=10 + seed), engine_draws(spec, seed=100 + seed)
    p = p_value(name, ours, theirs)
    print(f"{name}: p={p:.4f}")
    assert p > ALPHA, f"{name}: our draws differ from the engine's (p={p:.3g})"


def test_every_distribution_is_covered() -> None:
    assert {WandbParam.from_spec("x", s).distribution for s in CASES.values()} == set(DISTRIBUTIONS)


@pytest.mark.parametrize("name", list(CASES))
def test_from_unit_is_the_engines_ppf_point_for_point(name: str) -> None:
    spec = CASES[name]
    ours, engine = WandbParam.from_spec("x", spec), HyperParameter("x", dict(spec))
    for u in np.random.default_rng(3).random(200):  # never exactly on a category boundary
        mine, theirs = ours.from_unit(u), engine.ppf(float(u))
        if ours.kind == "float":
            assert isinstance(mine, float) and math.isclose(mine, theirs, rel_tol=1e-12, abs_tol=1e-300), (u, mine)
        else:
            assert mine == theirs, (u, mine, theirs)
            if ours.kind == "int":
                assert isinstance(mine, int) and not isinstance(mine, bool)


@pytest.mark.parametrize("name", list(CASES))
def test_inference_and_defaults_match_the_engine(name: str) -> None:
    spec = CASES[name]
    ours, engine = WandbParam.from_spec(("x",), spec), HyperParameter("x", dict(spec))
    assert ours.distribution == ENGINE_TYPE[engine.type]
    for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
        if key in engine.config:
            assert getattr(ours, key) == engine.config[key], key
            assert isinstance(getattr(ours, key), int) == isinstance(engine.config[key], int), key
        else:
            assert getattr(ours, key) is None, key


@pytest.mark.parametrize(("spec", "distribution", "kind"), [
    ({"min": 1, "max": 5}, "int_uniform", "int"),
    ({"min": 1, "max": 5.0}, "uniform", "float"),
    ({"min": 1.0, "max": 5}, "uniform", "float"),
    ({"min": 1, "max": 5, "distribution": "uniform"}, "uniform", "float"),
    ({"value": None}, "constant", "constant"),
    ({"values": [None, {"a": 1}]}, "categorical", "categorical"),
    ({"distribution": "normal"}, "normal", "float"),
    ({"distribution": "q_uniform", "min": 0, "max": 4}, "q_uniform", "float"),  # q defaults to 1.0, a float
    ({"distribution": "q_beta", "q": 1}, "q_beta", "int"),
])
def test_inference_edge_cases(spec: dict[str, Any], distribution: str, kind: str) -> None:
    ours = WandbParam.from_spec("x", spec)
    assert ours.distribution == distribution == ENGINE_TYPE[HyperParameter("x", dict(spec)).type]
    assert ours.kind == kind


@pytest.mark.parametrize("spec", [
    {"min": 5, "max": 1},
    {"min": 1, "max": 1},
    {"distribution": "int_uniform", "min": 1.0, "max": 2.0},
    {"values": []},
    {"value": 1, "values": [1]},
    {"min": 1, "max": 2, "q": 1},
    {"distribution": "log_uniform_values", "min": 0.0, "max": 1.0},
    {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0},
    {"distribution": "no_such", "min": 0, "max": 1},
    {"values": [1, 2], "probabilities": [0.5, 0.5], "distribution": "categorical"},
    {"distribution": "normal", "sigma": -1},
    {"min": "a", "max": "b"},
])
def test_specs_the_engine_rejects_are_rejected(spec: dict[str, Any]) -> None:
    with pytest.raises(Exception):  # noqa: B017  (the engine raises ValidationError or ValueError)
        HyperParameter("x", dict(spec))
    with pytest.raises(ValueError):
        WandbParam.from_spec("x", spec)


def test_probabilities_are_checked_and_honoured() -> None:
    bad = {"values": [1, 2, 3], "probabilities": [0.5, 0.1, 0.1]}
    with pytest.raises(Exception):  # noqa: B017  (the engine checks the sum for top-level parameters)
        SweepConfig({"method": "random", "parameters": {"x": bad}})
    with pytest.raises(ValueError, match="sum to 1"):
        WandbParam.from_spec("x", bad)
    with pytest.raises(ValueError, match="as long as values"):
        WandbParam.from_spec("x", {"values": [1, 2], "probabilities": [1.0]})
    spec = CASES["categorical_w_probabilities"]
    for draws in (_our_draws(spec, seed=4), engine_draws(spec, seed=5)):
        shares = [draws.count(v) / N for v in (1, 2, 3)]
        assert np.allclose(shares, [0.8, 0.1, 0.1], atol=0.03), shares
    param = WandbParam.from_spec("x", {"values": ["a", "never", "b"], "probabilities": [0.5, 0.0, 0.5]})
    assert {param.from_unit(u) for u in np.linspace(0, 1, 101)} == {"a", "b"}
    assert param.from_unit(1.0) == "b"


@pytest.mark.parametrize("name", CONTINUOUS)
def test_to_unit_inverts_from_unit_and_is_the_engines_cdf(name: str) -> None:
    ours, engine = WandbParam.from_spec("x", CASES[name]), HyperParameter("x", dict(CASES[name]))
    for u in np.random.default_rng(6).random(100):
        value = ours.from_unit(u)
        assert math.isclose(ours.to_unit(value), u, abs_tol=1e-9), (u, value)
        assert math.isclose(ours.to_unit(value), float(engine.cdf(value)), abs_tol=1e-9)


@pytest.mark.parametrize("name", ["categorical", "categorical_w_probabilities", "int_uniform"])
def test_to_unit_of_a_choice_maps_back_to_it(name: str) -> None:
    param = WandbParam.from_spec("x", CASES[name])
    choices = param.values or tuple(range(1, 7))
    for v in choices:
        assert param.from_unit(param.to_unit(v)) == v
    with pytest.raises(ValueError):
        param.to_unit("not a choice" if param.values else 99)


def test_unit_interval_edges_stay_in_range() -> None:
    for name, spec in CASES.items():
        param = WandbParam.from_spec("x", spec)
        for u in (0.0, 1e-12, 0.5, 1 - 1e-16, 1.0):
            value = param.from_unit(u)
            if param.kind in ("int", "float"):
                assert math.isfinite(value), (name, u, value)
        with pytest.raises(ValueError):
            param.from_unit(1.5)
    assert WandbParam.from_spec("x", {"min": 1, "max": 3}).from_unit(0.0) == 1  # the engine would give 0
    assert WandbParam.from_spec("x", {"values": [1, 2, 3]}).from_unit(0.0) == 1  # the engine would give 3


# --- grids -------------------------------------------------------------------------------------------------

GRIDS: dict[str, dict[str, Any]] = {
    "categorical_int_constant": {"a": {"values": [3, 1, 2]}, "b": {"min": 0, "max": 2}, "c": {"value": "x"}},
    "q_uniform": {"x": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
                  "y": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 3},
                  "z": {"distribution": "q_uniform", "min": 0, "max": 3}},
    "constants_only": {"a": {"value": None}, "b": {"value": [1, 2]}},
    "dict_choices_with_duplicates": {
        "arch": {"values": [{"w": 1, "d": 2}, {"d": 2, "w": 1}, {"w": 2, "d": 2}, [1, 2], [1, 2]]},
        "k": {"values": [1, 1, 1.0, True, None, "1"]},
    },
    "nested": {"opt": {"parameters": {"lr": {"values": [0.1, 0.01]},
                                      "sched": {"parameters": {"kind": {"values": ["cos", "step", "cos"]},
                                                               "warm": {"value": 5}}}}},
               "bs": {"values": [16, 32]}, "zz": {"min": 1, "max": 2}},
}


def _engine_grid(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """Run configs the engine's grid proposes, in order. Flat grids are driven as the server drives them, with
    the finished runs fed back; nested ones ask for many runs at once, because grid_search.py only recognises
    seen top-level values (`name in run.config`) and would repeat the first nested point forever, and without
    validation, because the engine's validation (schema.py fill_validate_schema) drops nested parameters."""
    config = {"method": "grid", "parameters": parameters}
    if any("parameters" in spec for spec in parameters.values()):
        assert sweeps.schema_violations_from_proposed_config(config) == []
        runs = sweeps.next_runs(config, [], validate=False, n=10_000)
        return [run.config for run in runs if run is not None]
    runs = []
    for _ in range(10_000):
        run = sweeps.next_run(config, runs, validate=True)
        if run is None:
            return [r.config for r in runs]
        run.state = sweeps.RunState.finished
        runs.append(run)
    raise AssertionError("the engine's grid did not end")


@pytest.mark.parametrize("name", list(GRIDS))
def test_grid_points_are_the_engines_in_its_order(name: str) -> None:
    parameters = GRIDS[name]
    theirs = [yaml_hash(c) for c in _engine_grid(parameters)]
    ours = [yaml_hash(wandb_run_config(p)) for p in grid_points(parameters)]
    assert len(set(ours)) == len(ours)
    assert ours == theirs


def test_grid_values_follow_the_engines_rules() -> None:
    def grid(spec: dict[str, Any]) -> list[Any]:
        return WandbParam.from_spec("x", spec).grid_values()

    assert grid({"min": 2, "max": 4}) == [2, 3, 4]  # int_uniform includes max
    assert grid({"distribution": "q_uniform", "min": 0, "max": 10, "q": 5}) == [0, 5]  # np.arange leaves max out
    assert grid({"distribution": "q_uniform", "min": 0, "max": 2}) == [0.0, 1.0]  # default q 1.0: floats
    assert grid({"values": [{"a": 1, "b": 2}, {"b": 2, "a": 1}, 1, 1.0, True]}) == [{"a": 1, "b": 2}, 1, 1.0, True]
    assert grid({"value": None}) == [None]
    for spec in ({"min": 0.0, "max": 1.0}, {"values": [1, 2], "probabilities": [0.5, 0.5]},
                 {"distribution": "log_uniform_values", "min": 0.1, "max": 1.0}):
        with pytest.raises(ValueError, match="grid search"):
            grid(spec)
        with pytest.raises(ValueError):
            sweeps.next_run({"method": "grid", "parameters": {"x": spec}}, [])


# --- nesting -----------------------------------------------------------------------------------------------

NESTED = {
    "optimizer": {"parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "schedule": {"parameters": {
            "kind": {"values": ["cos", "step"]},
            "warmup": {"parameters": {"steps": {"min": 0, "max": 100}, "ratio": {"value": None}}},
        }},
    }},
    "batch": {"values": [16, 32]},
}


def _walk(nested: Mapping[str, Any], path: ParamPath) -> Any:
    for key in path:
        nested = nested[key]
    return nested


def test_flatten_follows_the_engines_parameter_order() -> None:
    paths = list(flatten(NESTED))
    assert paths == [("batch",), ("optimizer", "lr"), ("optimizer", "schedule", "kind"),
                     ("optimizer", "schedule", "warmup", "ratio"), ("optimizer", "schedule", "warmup", "steps")]
    engine = [tuple(p.name.split(HyperParameterSet.NESTING_DELIMITER)) for p in HyperParameterSet.from_config(NESTED)]
    assert paths == engine
    assert [p.distribution for p in leaf_params(NESTED)] == [
        "categorical", "log_uniform_values", "categorical", "constant", "int_uniform"]


def test_nest_and_run_config_match_the_engines_run_config() -> None:
    random.seed(7)
    config = {"method": "random", "parameters": NESTED}
    assert sweeps.schema_violations_from_proposed_config(config) == []
    # validate=False: the engine's validation drops nested parameters (schema.py fill_validate_schema)
    run_config = sweeps.next_run(config, [], validate=False).config
    assert set(run_config) == {"batch", "optimizer"} and set(run_config["optimizer"]) == {"value"}
    values = {path: _walk({k: v["value"] for k, v in run_config.items()}, path) for path in flatten(NESTED)}
    assert values[("optimizer", "schedule", "warmup", "ratio")] is None
    assert wandb_run_config(values) == run_config
    nested = nest(values)
    assert {path: _walk(nested, path) for path in values} == values  # round trip
    assert nested["optimizer"]["schedule"]["warmup"] == {"ratio": None, "steps": values[
        ("optimizer", "schedule", "warmup", "steps")]}
    ours = {p.path: p.from_unit(u) for p, u in zip(leaf_params(NESTED), [0.9, 0.5, 0.1, 0.3, 0.99], strict=True)}
    assert wandb_run_config(ours) == {
        "batch": {"value": 32},
        "optimizer": {"value": {"lr": pytest.approx(10 ** (-4 + 3 * 0.5)),
                                "schedule": {"kind": "cos", "warmup": {"ratio": None, "steps": 99}}}},
    }


def test_value_null_is_a_constant() -> None:
    param = WandbParam.from_spec("x", {"value": None})
    assert (param.kind, param.from_unit(0.3), param.grid_values()) == ("constant", None, [None])
    assert grid_points({"x": {"value": None}}) == [{("x",): None}]
    assert sweeps.next_run({"method": "grid", "parameters": {"x": {"value": None}}}, []).config == {
        "x": {"value": None}}


@pytest.mark.parametrize("parameters", [
    {},
    {"a": {"parameters": {}}},
    {"a": {"parameters": {"b": {"value": 1}}, "value": 2}},
    {"bad name": {"value": 1}},
    {"a": 3},
])
def test_malformed_blocks_are_rejected(parameters: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        flatten(parameters)


def test_nest_rejects_a_path_that_is_both_value_and_group() -> None:
    with pytest.raises(ValueError):
        nest({("a",): 1, ("a", "b"): 2})
    with pytest.raises(ValueError):
        nest({("a", "b"): 1, ("a",): 2})
    with pytest.raises(ValueError):
        nest({(): 1})
