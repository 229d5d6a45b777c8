"""Any W&B sweep, any training script, offline: agent.py as a stand-in for `wandb sweep` + `wandb agent`.

The reference for W&B's semantics is W&B's own engine (the `sweeps` package its server runs); the
scripts are written the way W&B tells users to write them (tests/programs/wandb_program.py); the
configs are real ones written by others (tests/wandb_configs/, each with its source).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from dendrisweep.sweep.space import search_space, trial_values
from dendrisweep.sweep.spec import DEPRECATED, parse_sweep
from dendrisweep.sweep.storage import quiet_optuna
from dendrisweep.sweep.wandb_params import grid_points, nest
from dendrisweep.wandb_files import find_run_files, read_run_file
from tests.helpers import CASES, ROOT, engine_draws, p_value, record_of, run_main

STAND_IN = ROOT / "tests" / "programs" / "wandb_program.py"
CORPUS = sorted((ROOT / "tests" / "wandb_configs").glob("*.yaml"))
# Run in the default suite: one of each feature (the rest run with -m slow).
QUICK = {"docs_nested_parameters_random", "docs_random_q_log_uniform_values", "examples_boolean_grid_no_metric",
         "examples_keras_cnn_bayes_hyperband", "examples_hydra_bayes_args_no_hyphens",
         "wandb_tests_bayes_command_without_program", "sweeps_tests_grid_nested_command_project",
         "docs_nested_grid_constants"}
REAL_AGENT = "docs_nested_parameters_random"


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n].get("distribution") not in DEPRECATED])
def test_the_random_method_draws_what_wandb_draws(name: str) -> None:
    """2,000 draws through dendrisweep's own path (sweep spec -> Optuna distributions -> Optuna's random
    sampler -> the values a trial receives) against 2,000 from W&B's engine: KS or chi-squared."""
    spec = parse_sweep({"program": "train.py", "method": "random", "parameters": {"x": CASES[name]}}, Path("t.yaml"))
    quiet_optuna()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    space = search_space(spec)
    ours = [trial_values(spec, study.ask(space).params)[("x",)] for _ in range(2000)]
    p = p_value(name, ours, engine_draws(CASES[name], seed=3))
    assert p > 0.01, f"{name}: dendrisweep's random method differs from W&B's (p={p:.3g})"


def run_config(source: Path, tmp_path: Path, *extra: str, capfd: pytest.CaptureFixture[str] | None = None
               ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """agent.py on a config by others, its program replaced by the stand-in (commands that name no
    ${program} get W&B's default command, the one change made to them); with `capfd`, the agent runs in this
    process (its trials are still processes of their own)."""
    config = yaml.safe_load(source.read_text())
    config["program"] = str(STAND_IN)
    if "${program}" not in config.get("command", ["${program}"]):
        config["command"] = ["${env}", "${interpreter}", "${program}", "${args}"]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    metric = {"STANDIN_METRIC": (config.get("metric") or {}).get("name", "loss")}
    if capfd is not None:
        return run_main(capfd, "agent.py", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-progress", *extra,
                        cwd=tmp_path, env=metric), config
    env = {**os.environ, **metric}
    done = subprocess.run([sys.executable, str(ROOT / "agent.py"), str(path), "--runs-dir", str(tmp_path / "runs"),
                           "--no-progress", *extra], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    return done, config


def study_trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    quiet_optuna()
    return optuna.load_study(study_name="sweep", storage=f"sqlite:///{tmp_path / 'runs' / 'sweep' / 'study.db'}"
                             ).get_trials()


@pytest.mark.parametrize("source", [pytest.param(p, id=p.stem, marks=() if p.stem in QUICK else pytest.mark.slow)
                                    for p in CORPUS])
def test_real_sweep_configs_run_unchanged_with_a_wandb_style_script(source: Path, tmp_path: Path,
                                                                    capfd: pytest.CaptureFixture[str]) -> None:
    # agent.py runs as its own process for one config (REAL_AGENT) and in this process for the others
    done, config = run_config(source, tmp_path, "--count", "1", capfd=None if source.stem == REAL_AGENT else capfd)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    (trial,) = study_trials(tmp_path)
    assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs
    record = record_of(trial)
    (run,) = [read_run_file(f) for f in find_run_files(tmp_path / "runs" / "sweep" / "wandb")]
    assert run.run_id == record.run_id and run.exit_code == 0
    # a real project (the YAML's, else the study's name) and no sweep id W&B never issued: it syncs as it is
    assert run.project == (config.get("project") or "sweep") and run.sweep_id == "" and run.group == "sweep"
    metric = (config.get("metric") or {}).get("name")
    if metric is not None:  # the objective is what the script logged
        assert trial.value == run.summary[metric]
    # wandb.config got every parameter, nested ones as nested dicts, as `wandb agent` delivers them
    delivered = {k: v for k, v in run.config.items() if k != "argv"}
    assert delivered == record.config and set(delivered) == set(config["parameters"])


# slow: the default pass runs W&B's grid configs in-process (test_real_sweep_configs_run_unchanged...)
@pytest.mark.slow
def test_a_grid_sweep_runs_every_point_wandb_enumerates_and_ends_cleanly(tmp_path: Path) -> None:
    source = tmp_path / "grid.yaml"
    parameters = {"optimizer": {"parameters": {"name": {"values": ["adam", "sgd"]},
                                               "momentum": {"values": [0.9, 0.9, 0.5]}}},
                  "layers": {"distribution": "int_uniform", "min": 1, "max": 2},
                  "dropout": {"distribution": "q_uniform", "min": 0.0, "max": 0.3, "q": 0.1},
                  "seed": {"value": None}}
    source.write_text(yaml.safe_dump({"program": "train.py", "method": "grid", "parameters": parameters}))
    done, _ = run_config(source, tmp_path, "--workers", "2")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    trials = study_trials(tmp_path)
    expected = grid_points(parameters)
    assert len(trials) == len(expected) == 2 * 2 * 2 * 3  # momentum's duplicate counts once; max left out
    got = sorted(json.dumps(record_of(t).config, sort_keys=True) for t in trials)
    want = sorted(json.dumps(nest(point), sort_keys=True) for point in expected)
    assert got == want and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


# --- `wandb agent` behaviours users rely on ----------------------------------------------------------------

def scripted(path: Path, run_cap: int, *flags: str) -> Path:
    """A sweep of the fast stand-in trial (tests/programs/scripted_trial.py), flags before ${args}."""
    sweep = {"program": str(ROOT / "tests" / "programs" / "scripted_trial.py"), "method": "random",
             "metric": {"name": "best_val_acc", "goal": "maximize"}, "run_cap": run_cap,
             "command": ["${env}", "${interpreter}", "${program}", *flags, "${args}"],
             "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.1}}}
    path.write_text(yaml.safe_dump(sweep))
    return path


def agent(sweep: Path, runs: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "agent.py"), str(sweep), "--runs-dir", str(runs),
                           "--no-progress", *args], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=600)


def trials_of(runs: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    quiet_optuna()
    return optuna.load_study(study_name=study, storage=f"sqlite:///{runs / study / 'study.db'}").get_trials()


def test_the_flapping_guard_stops_an_agent_whose_runs_keep_failing(tmp_path: Path) -> None:
    done = agent(scripted(tmp_path / "broken.yaml", 10, "--exit", "1"), tmp_path / "runs")
    assert done.returncode == 1 and "3 runs failed in the first 60 s; stopped, as wandb agent does" in done.stderr
    assert len(trials_of(tmp_path / "runs", "broken")) == 3  # one worker: it stopped at the third failure
    done = agent(scripted(tmp_path / "broken.yaml", 5, "--exit", "1"), tmp_path / "runs", "--no-flapping-guard")
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(record_of(t).status == "failed" for t in trials_of(tmp_path / "runs", "broken")) == 5


def test_a_preempted_trial_is_recorded_as_such_and_its_parameters_run_again(tmp_path: Path) -> None:
    done = agent(scripted(tmp_path / "preempt.yaml", 1, "--preempted"), tmp_path / "runs", "--count", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    first, retry, queued = trials_of(tmp_path / "runs", "preempt")  # --count 2 stopped it; the next is queued
    assert queued.state == optuna.trial.TrialState.WAITING and queued.params == first.params
    for trial in (first, retry):
        assert trial.state == optuna.trial.TrialState.FAIL and record_of(trial).status == "preempted"
        assert record_of(trial).reason == "stopped by SIGTERM from outside the agent (preempted)"
    assert retry.params == first.params and retry.system_attrs["failed_trial"] == first.number


def test_analysis_reports_on_a_sweep_of_another_program(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Its metric, its parameters (nested ones as optimizer.lr); no dendrite sections it has no data for."""
    done, _ = run_config(ROOT / "tests" / "wandb_configs" / "docs_nested_parameters_random.yaml", tmp_path,
                         "--count", "3", capfd=capfd)
    assert done.returncode == 0, done.stderr[-2000:]
    report = run_main(capfd, "-m", "analysis", "report", str(tmp_path / "sweep.yaml"), "--runs-dir",
                      str(tmp_path / "runs"), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-2000:]
    page = (tmp_path / "report" / "report.md").read_text()
    trials = study_trials(tmp_path)
    best = min(trials, key=lambda t: t.value)
    assert f"Best: trial {best.number} (run {record_of(best).run_id}): loss {best.value:.4f}; " in page
    header = next(line for line in page.splitlines() if line.startswith("| trial | run_id | state | objective"))
    assert "nested_category_1.momentum" in header  # nested parameters as columns
    assert "dendrites" not in page and "Compression" not in page and "What drove loss" in page


@pytest.mark.parametrize("impute", ["latest", *(pytest.param(i, marks=pytest.mark.slow) for i in ("best", "worst"))])
def test_metric_impute_gives_a_crashed_run_its_logged_value(impute: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "crash.yaml"
    source.write_text(yaml.safe_dump({"program": "train.py", "method": "random", "run_cap": 1,
                                      "metric": {"name": "loss", "goal": "minimize", "impute": impute},
                                      "parameters": {"lr": {"min": 0.001, "max": 0.1}}}))
    monkeypatch.setenv("STANDIN_CRASH", "1")
    done, _ = run_config(source, tmp_path, "--no-flapping-guard")
    assert done.returncode == 0, done.stderr[-2000:]
    (trial,) = study_trials(tmp_path)
    record = record_of(trial)
    assert record.status == "failed" and record.exit_code == 1
    logged = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
    assert len(logged) == 3  # STANDIN_STEPS: rising to the run's value
    if impute == "worst":  # W&B's default: the run is left out of what the samplers learn from
        assert trial.state == optuna.trial.TrialState.FAIL and record.imputed is None
    else:
        assert trial.state == optuna.trial.TrialState.COMPLETE and record.imputed == impute
        assert trial.value == (logged[-1] if impute == "latest" else min(logged))
