"""Many agents on one study, misbehaving trials, and files that would run code: nothing lost, nothing run.

Trials here are tests/programs/scripted_trial.py, which speaks train_trial.py's protocol in a tenth of a
second, so the storage and the agent's bookkeeping (not training) are what gets loaded. bench/chaos.py and
bench/concurrency.py run the same checks at full size (20 SIGKILLs in a 60-trial real sweep; 4 agents x
100 trials on SQLite and PostgreSQL).
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from dendrisweep.errors import UsageError
from dendrisweep.sweep.audit import audit_study
from dendrisweep.sweep.storage import mark_lost, quiet_optuna, stored_record
from dendrisweep.trial import checkpoint
from tests.helpers import ROOT, grpc_proxy, record_of, run_script

SCRIPTED = "tests/programs/scripted_trial.py"
POSTGRES_URL = os.environ.get("DENDRISWEEP_TEST_POSTGRES", "")


def scripted_sweep(path: Path, run_cap: int, *flags: str) -> Path:
    """A valid sweep whose program is the scripted trial (flags go before the sweep's ${args})."""
    sweep = {"program": SCRIPTED, "method": "bayes", "metric": {"name": "best_val_acc", "goal": "maximize"},
             "run_cap": run_cap, "command": ["${env}", "${interpreter}", "${program}", *flags, "${args}"],
             "parameters": {"learning_rate": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.1},
                            "max_dendrites": {"values": [1, 2, 4, 8]}, "dropout": {"min": 0.0, "max": 0.5}}}
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def run_agents(sweep: Path, agents: int, storage: str, study: str, runs: Path, *args: str) -> list[Path]:
    """Start `agents` agent processes on one study at once (as on separate machines); wait for all."""
    folders = [runs / f"machine{i}" for i in range(agents)]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "agent.py"), str(sweep), "--storage", storage, "--study",
                               study, "--runs-dir", str(folder), "--no-progress", *args], cwd=ROOT,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for folder in folders]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    return [folder / study / "trials" for folder in folders]


# PostgreSQL's run is in CI's slow pass: the default pass keeps SQLite, the embedded default, and the gRPC proxy
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL (DENDRISWEEP_TEST_POSTGRES); see .ci/run")
        pytest.skip("no PostgreSQL server: set DENDRISWEEP_TEST_POSTGRES=postgresql://user:pass@host/db")
    return POSTGRES_URL


def test_three_agents_with_two_workers_each_lose_and_duplicate_nothing(storage: str, tmp_path: Path) -> None:
    sweep, study = scripted_sweep(tmp_path / "busy.yaml", 30), f"busy-{uuid.uuid4().hex[:8]}"
    folders = run_agents(sweep, 3, storage, study, tmp_path, "--workers", "2", "--sampler", "random")
    quiet_optuna()
    loaded = optuna.load_study(study_name=study, storage=storage)
    audit = audit_study(loaded, folders, budget=30)
    assert audit.complete == audit.settled == audit.trials == 30 and audit.problems() == {}
    assert sum(1 for f in folders if any(f.iterdir())) >= 2  # the agents really shared the work
    assert sorted(t.number for t in loaded.get_trials()) == list(range(30))


@pytest.mark.parametrize("case", ["hang", "flood", "exit"])
def test_misbehaving_trials_are_recorded_and_the_sweep_goes_on(case: str, tmp_path: Path) -> None:
    flags, args = {"hang": (["--hang"], ["--timeout-per-trial", "3"]), "flood": (["--flood", "8"], []),
                   "exit": (["--flood", "1", "--exit", "3"], [])}[case]
    sweep = scripted_sweep(tmp_path / f"{case}.yaml", 2, *flags)
    done = run_script("agent.py", str(sweep), "--runs-dir", str(tmp_path / "runs"), "--no-progress", *args)
    assert done.returncode == 0, done.stderr[-2000:]
    database = tmp_path / "runs" / case / "study.db"
    trials = optuna.load_study(study_name=case, storage=f"sqlite:///{database}").get_trials()
    assert len(trials) == 2  # the sweep went on after the first
    expected: dict[str, Any] = {"hang": ("timeout", "timed out after 3s"), "flood": ("finished", ""),
                                "exit": ("failed", "exit code 3: scripted failure")}
    status, reason = expected[case]
    for trial in trials:
        record = record_of(trial)
        assert record.status == status and record.reason == reason
        assert trial.state == (TrialState.COMPLETE if case == "flood" else TrialState.FAIL)
        if case == "exit":  # a bounded tail of what it printed, not the megabyte
            assert record.stderr_tail.endswith("scripted failure") and len(record.stderr_tail) <= 8192
    if case == "flood":
        logs = sorted((tmp_path / "runs" / case / "logs").glob("*.out"))
        assert len(logs) == 2 and all(log.stat().st_size >= 8 * 2**20 for log in logs)


def test_checkpoints_that_would_run_code_are_refused(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="refused: it needs pickled code to load"):
        checkpoint.load(ROOT / "tests" / "bad_inputs" / "weights" / "pickled_code.pt")
    assert "pwned" not in capfd.readouterr().out


def test_a_trial_failed_by_another_agent_while_it_runs_does_not_break_its_agent(tmp_path: Path) -> None:
    """A heartbeat missed on an overloaded machine: another agent marks the trial lost mid-run."""
    sweep, database = scripted_sweep(tmp_path / "slow.yaml", 1, "--sleep", "1"), tmp_path / "slow.db"
    storage = f"sqlite:///{database}"
    agent = subprocess.Popen([sys.executable, str(ROOT / "agent.py"), str(sweep), "--storage", storage,
                              "--runs-dir", str(tmp_path / "runs"), "--no-progress"], cwd=ROOT,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    quiet_optuna()
    deadline = time.monotonic() + 60
    while not database.is_file() or not _study_names(database):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    study = optuna.load_study(study_name="slow", storage=storage)
    while not [t for t in study.get_trials() if t.state == TrialState.RUNNING and stored_record(t) is not None]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (running,) = study.get_trials(states=(TrialState.RUNNING,))
    assert mark_lost(study, running, "marked lost by the test")  # what another agent does on a missed heartbeat
    _, err = agent.communicate(timeout=120)
    assert agent.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert f"trial {running.number} was marked lost by another agent while it ran" in err
    trials = optuna.load_study(study_name="slow", storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE] and trials[1].params == running.params


def _study_names(database: Path) -> list[str]:
    """The studies in a database the agent may still be creating. Read-only through sqlite3: Optuna's own
    reader would create the schema too, and two processes creating it at once collide (a missing table
    is simply 'not yet')."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            return [name for (name,) in connection.execute("SELECT study_name FROM studies")]
    except sqlite3.OperationalError:
        return []


def test_each_worker_is_pinned_to_one_gpu_round_robin(tmp_path: Path) -> None:
    """--gpus 0,1 with no --workers: two workers, every trial sees exactly its worker's GPU."""
    sweep = scripted_sweep(tmp_path / "gpus.yaml", 6, "--sleep", "0.05")
    done = run_script("agent.py", str(sweep), "--gpus", "0,1", "--runs-dir", str(tmp_path / "runs"), "--sampler",
                      "random", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    trials = (tmp_path / "runs" / "gpus" / "trials").glob("trial-*/result.json")
    seen = [json.loads(path.read_text())["cuda_visible_devices"] for path in trials]
    assert len(seen) == 6 and set(seen) == {"0", "1"}  # both GPUs used, never both (or none) at once


@pytest.mark.slow  # a second run of the GPU road: the default pass pins workers round robin above
def test_under_a_scheduler_workers_stay_on_the_gpus_the_job_was_given(tmp_path: Path) -> None:
    """Slurm sets CUDA_VISIBLE_DEVICES=3,5: `--gpus all` means those two, `--gpus 1` the second."""
    sweep = scripted_sweep(tmp_path / "slurm.yaml", 4, "--sleep", "0.05")
    for gpus, expected in (("all", {"3", "5"}), ("1", {"5"})):
        runs = tmp_path / f"runs-{gpus}"
        done = run_script("agent.py", str(sweep), "--gpus", gpus, "--runs-dir", str(runs), "--sampler", "random",
                          "--no-progress", env={"CUDA_VISIBLE_DEVICES": "3,5"})
        assert done.returncode == 0, done.stderr[-2000:]
        seen = {json.loads(path.read_text())["cuda_visible_devices"]
                for path in (runs / "slurm" / "trials").glob("trial-*/result.json")}
        assert seen == expected


@pytest.mark.parametrize("gpus, message", [("all", "--gpus all: this machine has no CUDA GPU"),
                                           ("0,x", "--gpus: expected GPU indices"), ("1,1", "--gpus: expected")])
def test_bad_gpus_are_one_line(gpus: str, message: str, tmp_path: Path) -> None:
    if gpus == "all" and torch.cuda.is_available():
        pytest.skip("this machine has GPUs")
    done = run_script("agent.py", str(scripted_sweep(tmp_path / "g.yaml", 1)), "--gpus", gpus, "--runs-dir",
                      str(tmp_path / "runs"))
    assert done.returncode == 2 and message in done.stderr and not (tmp_path / "runs").exists()


def test_agents_through_the_grpc_storage_proxy_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """Optuna's gRPC proxy in front of SQLite: our heartbeats and budget lock work through it."""
    from dendrisweep.sweep.storage import open_storage

    backend = f"sqlite:///{tmp_path / 'behind-proxy.db'}"
    proxy = grpc_proxy(open_storage(backend))
    sweep, study = scripted_sweep(tmp_path / "proxied.yaml", 16), "proxied"
    folders = run_agents(sweep, 3, proxy, study, tmp_path, "--workers", "2", "--sampler", "random")
    quiet_optuna()
    audit = audit_study(optuna.load_study(study_name=study, storage=backend), folders, budget=16)
    assert audit.complete == audit.settled == audit.trials == 16 and audit.problems() == {}
