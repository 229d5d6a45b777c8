"""The verdict against a known truth: tests/programs/noisy_trial.py scores 0.80 (+ EFFECT with dendrites)
with a seeded run quality shared by validation and test, on a fixed split whose predictions it saves,
so we know what the verdict should say (its rates, by simulation: tests/unit/analysis/test_calibration.py).
The same code path as a real verdict: the real agent made the two sweeps, replicates run through the
agent's controller, statistics on what they recorded. The real thing with train_trial.py is in
test_analysis.py."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from analysis.cli import main as analysis
from dendrisweep.sweep.cli import main as agent
from dendrisweep.sweep.storage import quiet_optuna
from tests.helpers import ROOT, offline_wandb_env

NOISY = ROOT / "tests" / "programs" / "noisy_trial.py"
VERDICT_KEYS = {"statement", "error_reduction", "error_reduction_ci", "accuracy_diff_pp", "accuracy_diff_ci", "p_value",
                "seeds", "dendritic", "baseline", "equal_params", "compression", "population", "min_effect", "power",
                "detectable_error_reduction", "seeds_to_resolve", "prob_dendritic_better", "prob_dendritic_better_ci",
                "schedule", "looks", "alpha", "exploratory"}
SIDE_KEYS = {"config", "test_acc_mean", "test_acc_sd", "test_acc_ci", "test_acc_values", "params", "macs", "runs",
             "fresh_seeds", "seed_values"}


def noisy_sweep(path: Path, dendrites: bool) -> Path:
    """A grid of 6 configs of the stand-in: two sizes, three learning rates."""
    sweep = {"program": str(NOISY), "method": "grid", "metric": {"name": "best_val_acc", "goal": "maximize"},
             "parameters": {"dendrites": {"value": dendrites}, "width": {"values": [0.5, 1.0]},
                            "lr": {"values": [0.1, 0.2, 0.3]}, "seed": {"value": 0}}}
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("noisy")
    with offline_wandb_env(root / "wandb"):
        for name, dendrites in (("dend", True), ("base", False)):
            code = agent([str(noisy_sweep(root / f"{name}.yaml", dendrites)), "--runs-dir", str(root / "runs"),
                          "--workers", "3", "--no-progress"])
            assert code == 0
    return root


def fresh_copy(sweeps: Path, where: Path) -> Path:
    """The two sweeps' studies in a new runs folder: a verdict there starts with no replicates."""
    shutil.copytree(sweeps / "runs", where / "runs", ignore=shutil.ignore_patterns("trials", "wandb", "logs"))
    return where


def storage(root: Path, name: str) -> str:
    return f"sqlite:///{root / 'runs' / name / 'study.db'}"


def verdict_args(sweeps: Path, root: Path, *extra: str) -> list[str]:
    return ["verdict", str(sweeps / "dend.yaml"), "--baseline", str(sweeps / "base.yaml"), "--runs-dir",
            str(root / "runs"), "--out", str(root / "out"), "--no-progress", *extra]


def test_a_known_effect_is_inside_the_interval_and_flagged(sweeps: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOISY_TRIAL_EFFECT", "0.05")
    monkeypatch.setenv("NOISY_TRIAL_FAIL_SEED", "1004")  # one seed crashes: recorded, the verdict goes on
    root = fresh_copy(sweeps, tmp_path)
    assert analysis(verdict_args(sweeps, root, "--top", "3", "--seeds", "5", "--workers", "4")) == 0
    found = json.loads((root / "out" / "verdict.json").read_text())
    assert set(found) >= VERDICT_KEYS and set(found["dendritic"]) >= SIDE_KEYS and set(found["baseline"]) >= SIDE_KEYS
    low, high = found["accuracy_diff_ci"]
    assert low <= 5.0 <= high and low > 0 and found["p_value"] < 0.05 and found["significant"]
    assert found["population"] == "task" and "on this task" in found["statement"]
    # chosen among 3 on seeds 1000-1004, estimated on 2000-2004 (which chose nothing: all 5 finished)
    assert found["statement"].startswith("Dendrites help:") and "5 seeds each" in found["statement"]
    for side in ("dendritic", "baseline"):
        assert found[side]["fresh_seeds"] and found[side]["seed_values"] == list(range(2000, 2005))
        assert len(found[side]["test_acc_values"]) == 5
    err_low, err_high = found["error_reduction_ci"]  # truth: (0.20 - 0.15) / 0.20 = 25 %
    assert err_low <= 0.25 <= err_high
    assert found["dendritic"]["config"]["dendrites"] is True and found["baseline"]["config"]["dendrites"] is False
    assert "seed" not in found["dendritic"]["config"] and found["seeds"] == 5
    assert sum(c["fresh_seeds"] for c in found["configs"]) >= 2
    for config in (c for c in found["configs"] if not c["fresh_seeds"]):  # the choice's round: 4 finished seeds,
        assert config["n"] == 4 and len(config["runs"]) == 4 and len(config["failed_runs"]) == 1  # the crash named
        assert "scripted crash" in config["failed_runs"][0] or "exit code 1" in config["failed_runs"][0]
        assert config["selection_gap"] == pytest.approx(config["sweep_value"] - config["replicate_value_mean"])
    # equal size: the best dendritic config (params 1000 or 2000) against a baseline at least as large
    equal = found["equal_params"]
    assert "statement" in equal
    if equal.get("baseline_config"):
        assert equal["baseline_config"]["params"] >= found["dendritic"]["params"]
    report = (root / "out" / "report.md").read_text()
    assert report.index("## Verdict") < report.index("## Summary") and found["statement"] in report
    assert (root / "out" / "plots" / "verdict.png").stat().st_size > 10_000


def _complete_by_job(storage: str, study: str) -> Counter[str]:
    quiet_optuna()
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    return Counter(t.user_attrs["job"]["key"] for t in trials if t.state == TrialState.COMPLETE)


def test_a_killed_verdict_resumes_without_rerunning_finished_replicates(sweeps: Path, tmp_path: Path) -> None:
    root = fresh_copy(sweeps, tmp_path)
    study_db = storage(root, "dend")
    env = {**os.environ, "NOISY_TRIAL_SLEEP": "0.3", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "analysis", *verdict_args(sweeps, root, "--top", "1", "--seeds", "4",
                                                                "--workers", "2", "--heartbeat", "1")]
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    before: Counter[str] = Counter()
    while time.monotonic() < deadline and sum(before.values()) < 3:
        time.sleep(0.3)
        try:
            before = _complete_by_job(study_db, "dend-verdict")
        except Exception:  # noqa: BLE001  the study does not exist yet
            continue
    first.send_signal(signal.SIGKILL)  # no goodbye: its running replicates are left RUNNING
    first.wait()
    assert sum(before.values()) >= 3 and not (root / "out" / "verdict.json").exists()
    second = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    after = _complete_by_job(study_db, "dend-verdict")
    found = json.loads((root / "out" / "verdict.json").read_text())
    # every replicate finished exactly once; those finished before the kill did not run again
    assert set(after.values()) == {1} and len(after) == 4 * len(found["configs"]), (before, after, second.stderr)
    assert all(after[job] == 1 for job in before), (before, after)


def test_a_declared_schedule_adds_seeds_at_its_looks_and_runs_only_the_new_ones(sweeps: Path, tmp_path: Path) -> None:
    root = fresh_copy(sweeps, tmp_path)
    assert analysis(verdict_args(sweeps, root, "--top", "2", "--seeds", "2", "--schedule", "2,3",
                                 "--workers", "4")) == 0
    two = _complete_by_job(storage(root, "dend"), "dend-verdict")
    assert analysis(verdict_args(sweeps, root, "--top", "2", "--seeds", "3", "--workers", "4")) == 0  # remembered
    three = _complete_by_job(storage(root, "dend"), "dend-verdict")
    assert set(three.values()) == {1} and set(two) < set(three)  # nothing ran twice
    found = json.loads((root / "out" / "verdict.json").read_text())
    assert found["looks"] == [2, 3] and found["schedule"]["looks"] == [2, 3] and found["exploratory"] is None
    assert found["alpha"] == pytest.approx(found["schedule"]["levels"][1]) and sum(found["schedule"]["levels"]) == \
        pytest.approx(0.05)
    assert found["dendritic"]["n"] == 3 and not found["statement"].startswith("Exploratory")


def test_more_seeds_without_a_schedule_are_exploratory(sweeps: Path, tmp_path: Path) -> None:
    root = fresh_copy(sweeps, tmp_path)
    assert analysis(verdict_args(sweeps, root, "--top", "1", "--seeds", "2", "--workers", "4")) == 0
    assert analysis(verdict_args(sweeps, root, "--top", "1", "--seeds", "3", "--workers", "4")) == 0
    found = json.loads((root / "out" / "verdict.json").read_text())
    assert found["looks"] == [2, 3] and found["statement"].startswith("Exploratory (a later look (2 -> 3 seeds)")
    assert not found["significant"]


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1"], "--seeds: at least 2"),
    (["--top", "0"], "expected a positive number"),
    (["--schedule", "5,3"], "--schedule: expected at least two increasing seed counts"),
    (["--schedule", "3,6", "--seeds", "5"], "--seeds 5 is not a look of --schedule 3,6"),
])
def test_verdict_bad_input_is_one_line(sweeps: Path, tmp_path: Path, args: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        analysis(verdict_args(sweeps, sweeps, *args))
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_verdict_needs_a_baseline(sweeps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        analysis(["verdict", str(sweeps / "dend.yaml"), "--runs-dir", str(sweeps / "runs")])
    assert "verdict needs a baseline sweep" in capsys.readouterr().err
