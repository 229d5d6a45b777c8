"""The sweep on W&B itself, through W&B's own client, against a local stub of W&B's GraphQL endpoint (no W&B
server is reachable here): `agent.py sync` makes one W&B sweep of a study's offline runs, and `agent.py
--wandb` creates a sweep with `wandb.sweep` and runs W&B's own agent, whose runs Ctrl-C stops."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dendrisweep.sweep.wandb_cloud import upload_command
from dendrisweep.wandb_files import find_run_files, read_run_file
from tests.helpers import ROOT, StubWandbServer, run_script

STAND_IN = str(ROOT / "tests" / "programs" / "wandb_program.py")  # a W&B-style script: it logs its runs


@pytest.fixture
def stub() -> Iterator[StubWandbServer]:
    server = StubWandbServer()
    yield server
    server.close()


SWEEP = {"program": STAND_IN, "method": "random", "metric": {"name": "loss", "goal": "minimize"}, "run_cap": 3,
         "parameters": {"learning_rate": {"min": 0.001, "max": 0.1}}}


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small study agent.py ran offline, as a user would sync it later."""
    root = tmp_path_factory.mktemp("offline")
    (root / "tiny.yaml").write_text(yaml.safe_dump(SWEEP))
    done = run_script("agent.py", str(root / "tiny.yaml"), "--runs-dir", str(root / "runs"), "--no-progress",
                      env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "runs" / "tiny"


def test_offline_runs_carry_a_real_project_and_the_study_as_group_and_no_sweep_id(study_dir: Path) -> None:
    """What `wandb sync` reads: the runs' own records (read with W&B's protobuf definitions)."""
    runs = [read_run_file(f) for f in find_run_files(study_dir / "wandb")]
    assert len(runs) == 3 and all(r.project == "tiny" and r.group == "tiny" and r.sweep_id == "" for r in runs)


def test_sync_makes_one_wandb_sweep_of_the_studys_runs(study_dir: Path, tmp_path: Path,
                                                       stub: StubWandbServer) -> None:
    sweep = SWEEP
    run_ids = sorted(f.stem.removeprefix("run-") for f in find_run_files(study_dir / "wandb"))
    done = run_script("agent.py", "sync", str(study_dir), "--project", "proj", "--skip-upload",
                      env=stub.env(tmp_path / "home"))
    assert done.returncode == 0, done.stderr[-2000:]
    (created,) = stub.called("upsertSweep")  # W&B's own wandb.sweep, with the runs as the sweep's prior runs
    config = yaml.safe_load(created["config"])
    assert {k: v for k, v in config.items() if k != "parameters"} == {k: v for k, v in sweep.items()
                                                                     if k != "parameters"}
    lr = config["parameters"]["learning_rate"]  # W&B's client names the distribution it infers
    assert lr == {"distribution": "uniform", "min": 0.001, "max": 0.1} and created["projectName"] == "proj"
    prior = json.loads(created["priorRunsFilters"])["$or"]
    assert sorted(p["name"] for p in prior) == run_ids
    assert "/stub-entity/proj/sweeps/sw123 holds the study's 3 runs" in done.stdout
    assert "continue the same search on any machine: wandb agent stub-entity/proj/sw123" in done.stdout


def test_the_upload_is_wandbs_own_sync_into_the_project(tmp_path: Path) -> None:
    folders = [tmp_path / "offline-run-20261130_000000-abc12345"]
    command = upload_command(folders, "proj", "team")
    assert command[1:4] == ["-m", "wandb", "sync"] and command[4:] == ["--project", "proj", "--entity", "team",
                                                                        str(folders[0])]


def test_sync_of_a_folder_without_a_study_is_one_line(tmp_path: Path) -> None:
    done = run_script("agent.py", "sync", str(tmp_path / "nothing"), "--project", "p")
    assert done.returncode == 2 and done.stderr.startswith("agent.py: error: cannot read sqlite:///")
    assert len(done.stderr.strip().splitlines()) == 1


def test_agent_wandb_creates_the_sweep_and_ctrl_c_stops_its_runs(tmp_path: Path) -> None:
    """agent.py --wandb: the sweep through wandb.sweep (no output scraped), W&B's own agent runs train_trial.py
    as W&B's server (the stub) tells it; Ctrl-C reaches the agent, which stops the run; nothing is left."""
    sweep = {"program": "train_trial.py", "method": "random", "metric": {"name": "best_val_acc", "goal": "maximize"},
             "parameters": {"epochs": {"value": 200}, "n_epochs_to_switch": {"values": [100]}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    run = {"type": "run", "run_id": "wbrun002", "program": "train_trial.py",
           "args": {"epochs": {"value": 200}, "n_epochs_to_switch": {"value": 100}}}
    stub = StubWandbServer(sweep_config=yaml.safe_dump(sweep), commands=[[run]])
    env = {**stub.env(tmp_path / "home"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "PYTHONPATH": str(ROOT), "WANDB_DIR": str(tmp_path), "DENDRISWEEP_OUT_DIR": str(tmp_path / "trials")}
    # W&B's agent runs `python train_trial.py` where it stands, as on a user's machine: in the checkout
    agent = subprocess.Popen([sys.executable, str(ROOT / "agent.py"), str(tmp_path / "s.yaml"), "--wandb",
                              "--project", "proj"], cwd=ROOT, env={**os.environ, **env},
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    trial_dir = tmp_path / "trials" / "trial-wbrun002"
    try:
        deadline = time.monotonic() + 180
        while not (trial_dir / "history.jsonl").is_file() or len((trial_dir / "history.jsonl").read_text()
                                                                  .splitlines()) < 2:
            assert time.monotonic() < deadline and agent.poll() is None, agent.communicate()[1][-3000:]
            time.sleep(0.3)
        agent.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = agent.communicate(timeout=120)
        assert agent.returncode == 130, err[-3000:]
        (created,) = stub.called("upsertSweep")
        assert yaml.safe_load(created["config"]) == sweep and created["projectName"] == "proj"
        assert "more agents: wandb agent stub-entity/proj/sw123" in out
        result = json.loads((trial_dir / "result.json").read_text())
        assert result["status"] == "stopped" and result["best_val_acc"] > 0.25  # stopped by its agent, measured
        left = subprocess.run(["pgrep", "-f", "wbrun002"], capture_output=True, text=True).stdout.split()
        assert left == []  # no orphan
    finally:
        if agent.poll() is None:
            agent.kill()
        stub.close()
