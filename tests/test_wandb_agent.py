"""train_trial.py under W&B's own agent code: `wandb.wandb_agent.Agent` launches it (`_command_run`: the
param file, `python` from PATH) and stops it (`_command_stop`: SIGTERM), and its own loop classifies the
exit. No W&B server exists here: the agent talks to a stub api object that answers its heartbeat the way
W&B's GraphQL endpoint does (a stub, not W&B), and the runs log offline."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dendrisweep.wandb_files import find_run_files, read_run_file
from tests.helpers import ROOT, finished_wandb_runs

RUN_ID = "wbrun001"
PARAMS = {"epochs": {"value": 200}, "n_epochs_to_switch": {"value": 100}, "scheduler_patience": {"value": 50}}


def history_lines(trial_dir: Path) -> int:
    path = trial_dir / "history.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


class StubServer:
    """What W&B's agent asks its api for: the agent's heartbeat, answered with the commands a W&B server
    would send (a stub): run the trial, then, once it has trained `epochs` epochs, stop it."""

    def __init__(self, trial_dir: Path, epochs: int) -> None:
        self.settings = {"entity": "stub-entity", "project": "stub-project"}
        self._service_api = self
        self.trial_dir, self.epochs, self.sent = trial_dir, epochs, []

    def execute_graphql(self, query: str, variables: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        assert "agentHeartbeat" in query, query
        commands: list[dict[str, Any]] = []
        if not self.sent:
            commands = [{"type": "run", "run_id": RUN_ID, "program": str(ROOT / "train_trial.py"), "args": PARAMS}]
        elif "stop" not in self.sent and history_lines(self.trial_dir) >= self.epochs:
            commands = [{"type": "stop", "run_id": RUN_ID}]
        self.sent += [c["type"] for c in commands]
        return {"agentHeartbeat": {"agent": {"id": "agent-1"}, "commands": json.dumps(commands)}}


@pytest.fixture
def agent_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where W&B's agent runs: its folder the working directory, this interpreter first on PATH (the agent runs
    `python` from PATH), offline W&B, W&B's sweep id as `wandb agent` sets it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep123")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    for name in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # W&B's agent sets these in its own environment
        monkeypatch.setenv(name, "")  # ... so they are put back as they were after the test
    return tmp_path


@pytest.mark.parametrize("slurm", [False, True], ids=["alone", "under-slurm"])
def test_wandbs_own_agent_launches_and_stops_a_trial_without_counting_a_failure(
        agent_env: Path, monkeypatch: pytest.MonkeyPatch, slurm: bool) -> None:
    """W&B's stop (hyperband, the UI's Stop) is SIGTERM: a stop, never a failure, in a Slurm job too."""
    import wandb
    from wandb.wandb_agent import Agent

    if slurm:
        monkeypatch.setenv("SLURM_JOB_ID", "4242")

    trial_dir = agent_env / "trials" / f"trial-{RUN_ID}"
    server = StubServer(trial_dir, epochs=3)
    monkeypatch.setattr(wandb, "Api", lambda *a, **k: server)  # the agent renews its api after each run
    monkeypatch.setattr(wandb, "teardown", lambda *a, **k: None)  # ... and tears down W&B: nothing to tear here
    agent = Agent(server, queue.Queue(), sweep_id="sweep123", count=1)
    agent.POLL_INTERVAL = 0.2  # type: ignore[misc]
    started = time.monotonic()
    agent._run_loop("agent-1")  # W&B's own loop: launch, heartbeat, stop, classify the exit
    assert server.sent == ["run", "stop"] and time.monotonic() - started < 120
    assert agent._finished == 1 and agent._failed == 0  # the stop is no failed run to W&B's agent
    result = json.loads((trial_dir / "result.json").read_text())
    assert result["status"] == "stopped" and result["reason"].startswith("stopped by SIGTERM")
    assert result["stop_reason"] == result["reason"] and 3 <= result["epochs_run"] < 200
    assert result["best_val_acc"] > 0.25 and result["test_acc"] is not None  # the best model so far, measured
    params = (agent_env / "wandb" / "sweep-sweep123" / f"config-{RUN_ID}.yaml").read_text()
    assert "epochs:\n  value: 200" in params  # the param file W&B's agent wrote is what the trial trained with
    assert result["config"]["epochs"] == 200 and result["config"]["n_epochs_to_switch"] == 100
    run = finished_wandb_runs(agent_env / "wandb", {RUN_ID})[RUN_ID]
    assert run.exit_code == 0 and run.summary["status"] == "stopped" and run.summary["best_val_acc"] > 0.25
    assert run.sweep_id == "sweep123"  # under W&B's agent the run is the sweep's


def trial(out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(ROOT / "train_trial.py"), "--out-directory", str(out),
            *(a for name, p in PARAMS.items() for a in (f"--{name}", str(p["value"])))]
    return subprocess.Popen(args, cwd=out.parent, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def after_epochs(process: subprocess.Popen[bytes], out: Path, epochs: int, signum: int) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while not any(history_lines(d) >= epochs for d in out.glob("trial-*")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signum)
    process.wait(60)
    (trial_dir,) = out.glob("trial-*")
    return dict(json.loads((trial_dir / "result.json").read_text()), exit_code=process.returncode)


def test_a_server_side_stop_ends_the_run_stopped_not_failed(tmp_path: Path) -> None:
    """W&B's run stop checker interrupts the main thread with SIGINT when the sweep or the UI stops a run."""
    result = after_epochs(trial(tmp_path / "out"), tmp_path / "out", 2, signal.SIGINT)
    assert result["exit_code"] == 0 and result["status"] == "stopped" and "SIGINT" in result["reason"]
    assert result["best_val_acc"] > 0.25


def test_slurms_preemption_notice_is_a_preemption_wandb_can_requeue(tmp_path: Path) -> None:
    """SIGUSR1, which the README's Slurm recipe has Slurm send ahead of a preemption (--signal=B:USR1@120)."""
    result = after_epochs(trial(tmp_path / "out", {"SLURM_JOB_ID": "4242"}), tmp_path / "out", 2, signal.SIGUSR1)
    assert result["exit_code"] == 143 and result["status"] == "preempted"  # non-zero: W&B requeues it
    assert result["reason"].startswith("preempted (SIGUSR1 from the cluster scheduler)")
    (run_file,) = find_run_files(tmp_path / "wandb-home")
    assert read_run_file(run_file).preempting  # W&B's own preempting record, in the run's file
