"""sweep/spec.py and space.py: sweep YAMLs are valid W&B configs, checked against the registry, translated to
Optuna faithfully; wandb_cloud.py passes them to W&B untouched."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from dendrisweep.errors import UsageError
from dendrisweep.sweep.samplers import import_sweeps
from dendrisweep.sweep.space import decode, grid, search_space, trial_params
from dendrisweep.sweep.spec import differences, load_sweep, ordinary, parse_sweep
from dendrisweep.sweep.wandb_cloud import agent_command
from tests.helpers import ROOT

SHIPPED = sorted((ROOT / "sweeps").glob("*.yaml"))


def test_sweeps_folder_holds_the_required_sweeps() -> None:
    assert {"kws_dendrites", "kws_baseline", "quickstart"} <= {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_sweeps_are_valid_wandb_configs_and_registry_checked(path: Path) -> None:
    spec = load_sweep(path)  # registry + our checks + W&B's schema
    raw = yaml.safe_load(path.read_text())
    # the released engine (0.2) predates run_cap and W&B's multi-objective form (`metrics:`, `scheduler:`, #135):
    # what it knows is checked by it here; the rest by test_multi_objective.py (and W&B's head by
    # test_wandb_sweeps_head.py when a clone is given)
    known = {k: v for k, v in raw.items() if k not in ("run_cap", "metrics", "scheduler")}
    assert import_sweeps().schema_violations_from_proposed_config(
        {**known, "method": "random"} if spec.method == "custom" else known) == []
    assert spec.program == "train_trial.py" and "${program}" in spec.command
    assert spec.method in ("bayes", "custom") and spec.goal == "maximize" and spec.run_cap


PAIRS = [("kws_dendrites", "kws_baseline"), ("mobilenet_dendrites", "mobilenet_baseline"),
         ("quickstart", "quickstart_baseline")]


@pytest.mark.parametrize("dendritic, baseline", PAIRS, ids=[p[0] for p in PAIRS])
def test_each_shipped_pair_searches_the_same_ordinary_space_with_the_same_budget(dendritic: str,
                                                                               baseline: str) -> None:
    d, b = load_sweep(ROOT / f"sweeps/{dendritic}.yaml"), load_sweep(ROOT / f"sweeps/{baseline}.yaml")
    assert d.parameters["dendrites"].value is True and b.parameters["dendrites"].value is False
    assert differences(d, b) == [] and ordinary(d) == ordinary(b) and d.run_cap == b.run_cap
    assert "width_multiplier" in ordinary(b) and "n_epochs_to_switch" in ordinary(b)  # size and patience: both
    assert not d.warnings and not b.warnings  # no shipped config can be stopped by its cap before PAI finishes


def test_a_pair_searched_differently_is_named_setting_by_setting() -> None:
    d = spec_of({"dendrites": {"value": True}, "width_multiplier": {"values": [0.5, 1.0]},
                 "max_dendrites": {"values": [1, 2]}}, run_cap=4)
    b = spec_of({"dendrites": {"value": False}, "width_multiplier": {"values": [0.5, 1.0, 2.0]},
                 "dropout": {"min": 0.0, "max": 0.5}}, run_cap=6)
    assert differences(d, b) == ["dropout: not searched vs {min: 0.0, max: 0.5}",
                                 "width_multiplier: {values: [0.5, 1.0]} vs {values: [0.5, 1.0, 2.0]}",
                                 "run_cap: 4 vs 6"]  # max_dendrites is PAI's own: the dendritic side's alone


def test_a_sweep_whose_cap_may_cut_pai_short_is_warned_about_with_its_share_and_worst_config() -> None:
    spec = spec_of({"epochs": {"value": 100}, "switch_mode": {"value": "fixed"},
                    "fixed_switch_num": {"values": [10, 30]}, "max_dendrites": {"values": [1, 8]},
                    "max_dendrite_tries": {"value": 1}})
    (warning,) = spec.warnings
    # needs: 1 dendrite: 20 or 60 epochs; 8: 90 or 270 -> one config in four cannot finish
    assert warning.startswith("2") and "% of this search space may be stopped by the epoch cap" in warning
    assert "the worst: its fixed schedule can take 270 epochs (max_dendrites=8" in warning
    assert spec_of({"epochs": {"value": 300}, "max_dendrites": {"values": [1, 2]}}).warnings == []
    assert spec_of({"dendrites": {"value": False}, "epochs": {"value": 1},
                    "learning_rate": {"values": [0.1, 0.2]}}).warnings == []  # a baseline has no PAI schedule


def spec_of(parameters: dict, **extra: object):  # type: ignore[no-untyped-def]
    raw = {"program": "train_trial.py", "method": "bayes", "metric": {"name": "best_val_acc", "goal": "maximize"},
           "parameters": parameters, **extra}
    return parse_sweep(raw, Path("test.yaml"))


def test_translation_to_optuna_distributions() -> None:
    spec = spec_of({
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "dropout": {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
        "width_multiplier": {"min": 0.25, "max": 1.0},
        "max_dendrites": {"distribution": "int_uniform", "min": 1, "max": 8},
        "fixed_switch_num": {"min": 5, "max": 30},
        "switch_mode": {"values": ["history", "fixed"]},
        "improvement_threshold": {"values": [[0.01, 0.001, 0], [0]]},
        "epochs": {"value": 7},
    })
    space = search_space(spec)
    assert space["learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert space["dropout"] == FloatDistribution(0.0, 1.0)  # its quantile: W&B's q-rounding, exactly
    assert space["width_multiplier"] == FloatDistribution(0.25, 1.0)
    assert space["max_dendrites"] == IntDistribution(1, 8) == space["max_dendrites"]
    assert space["fixed_switch_num"] == IntDistribution(5, 30)
    assert space["switch_mode"] == CategoricalDistribution(["history", "fixed"])
    assert space["improvement_threshold"] == CategoricalDistribution(["[0.01, 0.001, 0.0]", "[0.0]"])
    assert "epochs" not in space and spec.fixed() == {("epochs",): 7}
    params = trial_params(spec, {"improvement_threshold": "[0.0]", "switch_mode": "fixed", "dropout": 0.5})
    assert params == {"epochs": 7, "improvement_threshold": [0.0], "switch_mode": "fixed", "dropout": 0.2}
    assert decode("history") == "history"


def test_grid_points_and_budget() -> None:
    spec = spec_of({"max_dendrites": {"values": [1, 2]}, "fixed_switch_num": {"min": 5, "max": 7},
                    "dropout": {"distribution": "q_uniform", "min": 0.0, "max": 0.2, "q": 0.1}}, method="grid")
    points = grid(spec)
    assert points["max_dendrites"] == [1, 2] and points["fixed_switch_num"] == [5, 6, 7]
    assert points["dropout"] == pytest.approx([0.0, 0.1])  # W&B: np.arange(min, max, q) leaves max out
    with pytest.raises(UsageError, match="grid needs values, int_uniform or q_uniform"):
        spec_of({"dropout": {"min": 0.0, "max": 0.5}}, method="grid")


def test_hyperband_translation() -> None:
    spec = spec_of({"max_dendrites": {"values": [1, 2]}},
                   early_terminate={"type": "hyperband", "min_iter": 3, "eta": 2})
    assert spec.hyperband is not None and (spec.hyperband.min_iter, spec.hyperband.eta) == (3, 2)
    spec = spec_of({"max_dendrites": {"values": [1, 2]}},
                   early_terminate={"type": "hyperband", "max_iter": 27, "s": 2})
    assert spec.hyperband is not None and (spec.hyperband.min_iter, spec.hyperband.max_iter) == (3, 27)


def test_wandbs_own_agent_runs_the_sweep_by_its_path() -> None:
    assert agent_command("me/proj/ab12cd34", 5)[1:] == ["-m", "wandb", "agent", "--count", "5", "me/proj/ab12cd34"]
    assert agent_command("me/proj/ab12cd34", None)[-2:] == ["agent", "me/proj/ab12cd34"]


BAD_SWEEPS = {
    "yaml syntax": ("method: bayes\nparameters: {x: [1\n", "not valid YAML"),
    "not a mapping": ("- method\n", "expected a mapping of settings, got list"),
    "unknown method": ("method: bayse\n", "method: 'bayse' is not one of bayes, random, grid"),
    "missing metric": ("method: bayes\nprogram: train_trial.py\nparameters: {max_dendrites: {values: [1, 2]}}\n",
                       "metric: expected {name: ..., goal: maximize|minimize}"),
    "metric not reported": ("method: bayes\nmetric: {name: val_accuracy, goal: maximize}\n",
                            "metric.name: 'val_accuracy' is not reported by train_trial.py"),
    "bad goal": ("method: bayes\nmetric: {name: best_val_acc, goal: up}\n", "metric.goal: 'up' is not one of"),
    "empty parameters": ("method: bayes\nmetric: {name: best_val_acc, goal: maximize}\nparameters: {}\n",
                         "parameters: expected a non-empty mapping"),
    "misspelled parameter": ("{base}max_dendrits: {{values: [1, 2]}}\n",
                             "parameters.max_dendrits: unknown setting 'max_dendrits'; did you mean 'max_dendrites'?"),
    "dashed parameter": ("{base}max-dendrites: {{values: [1, 2]}}\n", "use the registry name 'max_dendrites'"),
    "value out of bounds": ("{base}max_dendrites: {{values: [0, 2]}}\n",
                            "parameters.max_dendrites.values: max_dendrites: 0 is below the minimum 1"),
    "bounds reversed": ("{base}learning_rate: {{distribution: log_uniform_values, min: 0.1, max: 0.001}}\n",
                        "parameters.learning_rate: min 0.1 is not less than max 0.001"),
    "float distribution for an int": ("{base}max_dendrites: {{distribution: uniform, min: 1, max: 4.5}}\n",
                                      "max_dendrites is an integer setting"),
    "distribution for a choice": ("{base}switch_mode: {{distribution: uniform, min: 0, max: 1}}\n",
                                  "switch_mode is a choice setting; give it 'values'"),
    "deprecated distribution": ("{base}weight_decay: {{distribution: log_uniform, min: -9, max: -3}}\n",
                                "'log_uniform' takes base-e exponents and is deprecated by W&B; "
                                "use log_uniform_values"),
    "distribution beyond the setting's range": ("{base}dropout: {{distribution: normal, mu: 0.2, sigma: 0.1}}\n",
                                                "distribution 'normal' can draw"),
    "bad choice": ("{base}switch_mode: {{values: [history, sometimes]}}\n", "'sometimes' is not one of history, fixed"),
    "command without program": ("{base}max_dendrites: {{values: [1, 2]}}\ncommand: [python, train.py, '${{args}}']\n",
                                "command: must contain ${program}"),
    "run_cap not positive": ("{base}max_dendrites: {{values: [1, 2]}}\nrun_cap: 0\n", "run_cap: expected a positive"),
    "unknown top-level key": ("{base}max_dendrites: {{values: [1, 2]}}\nmethd: bayes\n",
                              "W&B sweep schema: Additional properties are not allowed ('methd' was unexpected)"),
    "hyperband on a final-only metric": (
        "method: bayes\nprogram: train_trial.py\nmetric: {name: test_acc, goal: maximize}\n"
        "parameters: {max_dendrites: {values: [1, 2]}}\nearly_terminate: {type: hyperband, min_iter: 3}\n",
        "hyperband needs a metric logged every epoch"),
    "nothing searched": ("{base}max_dendrites: {{value: 2}}\n", "nothing to search"),
}
BASE = "method: bayes\nprogram: train_trial.py\nmetric: {name: best_val_acc, goal: maximize}\nparameters:\n  "


@pytest.mark.parametrize("case", sorted(BAD_SWEEPS))
def test_malformed_sweeps_exit_2_with_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dendrisweep.sweep.cli import main

    content, message = BAD_SWEEPS[case]
    path = tmp_path / "bad.yaml"
    path.write_text(content.format(base=BASE) if "{base}" in content else content)
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "runs").exists()
