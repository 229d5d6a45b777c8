"""agent.py end to end: real Optuna storage, real train_trial.py processes, real W&B offline runs.
(The decisions inside are unit-tested in tests/unit/sweep: settle, the controller loop, flapping.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from dendrisweep.data import LabelledArrays
from dendrisweep.data.npy_splits import write_directory
from dendrisweep.data.synthetic import make_keyword_data
from dendrisweep.sweep import AgentOptions, Controller, SweepSource, load_sweep
from dendrisweep.sweep.controller import is_settled
from dendrisweep.sweep.space import trial_params
from tests.helpers import ROOT, finished_wandb_runs, record_of, run_main, run_script


def write_sweep(path: Path, run_cap: int, epochs: int = 2, command: list[str] | None = None, **extra: Any) -> Path:
    sweep = {"program": "train_trial.py", "method": "bayes", "metric": {"name": "best_val_acc", "goal": "maximize"},
             "run_cap": run_cap,
             "parameters": {"epochs": {"value": epochs}, "switch_mode": {"value": "fixed"},
                            "fixed_switch_num": {"value": 1},
                            "learning_rate": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.01},
                            "max_dendrites": {"values": [1, 2]},
                            "improvement_threshold": {"values": [[0.01, 0.001, 0], [0]]}},
             **({"command": command} if command else {}), **extra}
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def agent(sweep: Path, runs: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = run_script("agent.py", str(sweep), "--runs-dir", str(runs), "--no-progress", *args, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def load(runs: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{runs / name / 'study.db'}")


def test_sweep_runs_trials_whose_params_match_their_wandb_config(tmp_path: Path,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    sweep = write_sweep(tmp_path / "tiny.yaml", run_cap=2)
    agent(sweep, tmp_path / "runs", "--workers", "2")
    study, spec = load(tmp_path / "runs", "tiny"), load_sweep(sweep)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    records = {t.number: record_of(t) for t in trials}
    runs = finished_wandb_runs(tmp_path / "runs" / "tiny", {r.run_id for r in records.values()})
    assert len(runs) == 2
    for trial in trials:
        record = records[trial.number]
        run = runs[record.run_id]
        assert run.exit_code == 0 and run.group == "tiny" and run.project == "tiny" and not run.sweep_id
        expected = trial_params(spec, trial.params)
        assert {k: run.config[k] for k in expected} == expected
        assert trial.value == run.summary["best_val_acc"] == record.best_val_acc == record.objective
        assert record.status == "finished" and record.agent_seconds and record.wall_seconds
        assert record.agent_seconds > record.wall_seconds  # the agent's time holds the trial's own
        assert trial.intermediate_values  # per-epoch values streamed back while the trial ran
    # Re-running the same command resumes: the budget is spent, nothing is re-run or rewritten (in process: the
    # agent's own process was started above).
    before = [(t.number, t.value, record_of(t).run_id) for t in trials]
    again = ["agent.py", str(sweep), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    assert run_main(capfd, *again).returncode == 0
    assert [(t.number, t.value, record_of(t).run_id) for t in load(tmp_path / "runs", "tiny").get_trials()] == before
    # Raising run_cap continues the same study.
    write_sweep(sweep, run_cap=3)
    assert run_main(capfd, *again).returncode == 0
    assert sum(is_settled(t) for t in load(tmp_path / "runs", "tiny").get_trials()) == 3


def _wait_for(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


# slow: the default pass keeps a killed process's road in test_verdict (SIGKILL, resume)
@pytest.mark.slow
def test_sigkilled_worker_leaves_a_failed_trial_and_resume_completes_the_budget(tmp_path: Path) -> None:
    sweep, runs = write_sweep(tmp_path / "kill.yaml", run_cap=1, epochs=12), tmp_path / "runs"
    # epochs of a few seconds each: PAI finishes these trials within a few epochs, and the kill must land first
    raw = yaml.safe_load(sweep.read_text())
    raw["parameters"]["builtin_samples"] = {"value": 9000}
    sweep.write_text(yaml.safe_dump(raw, sort_keys=False))
    command = [sys.executable, str(ROOT / "agent.py"), str(sweep), "--runs-dir", str(runs), "--no-progress",
               "--heartbeat", "2"]
    worker = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    trials_dir = runs / "kill" / "trials"
    _wait_for(lambda: any(p.stat().st_size for p in trials_dir.glob("*/history.jsonl")), 120)
    worker.send_signal(signal.SIGKILL)  # mid-trial
    worker.wait()
    (orphan,) = trials_dir.iterdir()
    # The trial process dies with its agent and records why.
    _wait_for(lambda: (orphan / "result.json").is_file(), 60)
    assert json.loads((orphan / "result.json").read_text())["status"] == "stopped"
    assert load(runs, "kill").get_trials()[0].state == TrialState.RUNNING

    agent(sweep, runs, "--heartbeat", "2")
    trials = load(runs, "kill").get_trials()
    lost = trials[0]
    assert lost.state == TrialState.FAIL and record_of(lost).status == "lost"
    assert "stopped heartbeating" in record_of(lost).reason
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE and retried[0].params == lost.params
    assert sum(is_settled(t) for t in trials) == 1 and sum(t.state == TrialState.COMPLETE for t in trials) == 1


def _huge_data(folder: Path) -> Path:
    train, val, classes = make_keyword_data(0)
    big = np.float32(1e37)
    write_directory(folder, LabelledArrays(train.x * big, train.y), LabelledArrays(val.x * big, val.y), classes)
    return folder


@pytest.mark.parametrize("case", ["crash", pytest.param("diverge", marks=pytest.mark.slow)])  # settle: unit-tested
def test_failing_trials_are_recorded_with_their_stderr_and_the_sweep_goes_on(case: str, tmp_path: Path) -> None:
    base = ["${env}", "${interpreter}", "${program}"]
    extra = ["--no-such-flag"] if case == "crash" else ["--data-directory", str(_huge_data(tmp_path / "huge"))]
    sweep = write_sweep(tmp_path / f"{case}.yaml", run_cap=2, command=[*base, *extra, "${args}"])
    agent(sweep, tmp_path / "runs")
    trials = load(tmp_path / "runs", case).get_trials()
    assert len(trials) == 2 and all(t.state == TrialState.FAIL for t in trials)  # went on after the first
    status, reason = {"crash": ("failed", "exit code 2: train_trial.py: error: unknown setting '--no-such-flag'"),
                      "diverge": ("diverged", "loss became")}[case]
    for trial in trials:
        assert record_of(trial).status == status and reason in record_of(trial).reason
        assert is_settled(trial)  # counted against the budget, not retried
    if case == "crash":
        assert "unknown setting '--no-such-flag'" in record_of(trials[0]).stderr_tail


def test_pruned_trial_is_stopped_and_recorded(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "prune.yaml", run_cap=1, epochs=60,
                        early_terminate={"type": "hyperband", "min_iter": 1})
    # dendrites every 30 epochs: with one every epoch PAI finished in a few, and under load before the prune landed
    raw = yaml.safe_load(sweep.read_text())
    raw["parameters"]["fixed_switch_num"] = {"value": 30}
    sweep.write_text(yaml.safe_dump(raw, sort_keys=False))
    runs = tmp_path / "runs"
    options = AgentOptions(spec=load_sweep(sweep), study_name="prune", run_dir=runs / "prune",
                           storage_url=f"sqlite:///{runs / 'prune.db'}", progress=False)
    controller = Controller(options, SweepSource(options))
    controller.open().pruner = optuna.pruners.ThresholdPruner(lower=2.0)  # accuracy < 2: prune at once
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        result = controller.run()
    finally:
        os.chdir(cwd)
    (trial,) = controller.open().get_trials()
    assert result.pruned == 1 and trial.state == TrialState.PRUNED
    assert record_of(trial).status == "pruned" and len(trial.intermediate_values) < 60
    run_result = json.loads((Path(str(record_of(trial).trial_dir)) / "result.json").read_text())
    assert run_result["status"] == "stopped"  # the trial was stopped early and said so


def test_agent_script_reports_a_bad_sweep_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("method: bayes\nprogram: train_trial.py\nmetric: {name: best_val_acc, goal: maximize}\n"
                    "parameters:\n  max_dendrits: {values: [1, 2]}\n")
    done = run_script("agent.py", str(path), "--runs-dir", str(tmp_path / "runs"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"agent.py: error: {path}: parameters.max_dendrits: unknown setting 'max_dendrits'; "
        "did you mean 'max_dendrites'?"]


@pytest.mark.slow  # two int8 conversions; W&B's multi-objective scheduler is driven in-process in tests/unit
def test_the_shipped_pareto_sweep_runs_offline_with_a_direction_and_a_measured_value_per_metric(
        tmp_path: Path) -> None:
    """sweeps/kws_pareto.yaml as shipped, but two tiny trials: `method: custom`, two metrics, the int8 model
    converted and measured in each trial, the study told both values."""
    raw = yaml.safe_load((ROOT / "sweeps" / "kws_pareto.yaml").read_text())
    raw["run_cap"] = 2
    raw["parameters"].update({"epochs": {"value": 2}, "builtin_samples": {"value": 600}, "width_multiplier":
                              {"values": [0.5, 1.0]}, "switch_mode": {"value": "fixed"},
                              "fixed_switch_num": {"value": 1}, "max_dendrites": {"value": 1}})
    sweep = tmp_path / "pareto.yaml"
    sweep.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = agent(sweep, tmp_path / "runs")
    assert "Pareto front of best_val_acc, tflite_int8_bytes:" in done.stdout
    study = load(tmp_path / "runs", "pareto")
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["best_val_acc", "tflite_int8_bytes"]
    for trial in study.get_trials():
        record = record_of(trial)
        assert trial.state == TrialState.COMPLETE and trial.values == [record.best_val_acc, record.tflite_int8_bytes]
        deployed = Path(str(record.trial_dir)) / "deployed" / "model_quantized_int8_io.tflite"
        assert record.tflite_int8_bytes == deployed.stat().st_size and record.arena_bytes
