"""sweep/launch.py, built purely: the command `wandb agent` would run (W&B's own macro code) and its environment;
and the LocalLauncher that runs it, a worker's GPU and cores with it."""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from dendrisweep.sweep.launch import Job, LocalLauncher, TrialFiles, build_command, trial_environment
from dendrisweep.sweep.spec import DEFAULT_COMMAND

PARAMS = {"max_dendrites": 2, "dendrites": True, "find_best_lr": False, "improvement_threshold": [0.001, 0]}


def job(**overrides: object) -> Job:
    fields = {"command": tuple(DEFAULT_COMMAND), "program": "train_trial.py", "params": PARAMS, "group": "study",
              "project": "proj", **overrides}
    return Job(**fields)  # type: ignore[arg-type]


def test_command_expands_every_wandb_agent_macro(tmp_path: Path) -> None:
    files = TrialFiles(tmp_path, "study", "abc12345")
    template = ("${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}", "${args_no_boolean_flags}",
                "${args_json}", "${args_json_file}", "${args_no_equals}", "--x=${envvar:HOME}")
    command = build_command(job(command=template), files)
    assert command[:3] == ["/usr/bin/env", sys.executable, "train_trial.py"]
    assert "--max_dendrites=2" in command and "max_dendrites=2" in command
    assert "--dendrites" in command and "--find_best_lr=False" in command
    assert "--improvement_threshold=[0.001, 0]" in command
    assert ('{"max_dendrites": 2, "dendrites": true, "find_best_lr": false, "improvement_threshold": [0.001, 0]}'
            in command)
    assert str(files.args_json_file) in command and command[-1].startswith("--x=/")
    assert command.count("--max_dendrites") == 1  # ${args_no_equals}: flag and value apart


def test_a_command_without_program_runs_as_it_stands(tmp_path: Path) -> None:
    command = build_command(job(command=("python", "train.py", "${args}"), program=None),
                            TrialFiles(tmp_path, "s", "r"))
    assert command[:2] == ["python", "train.py"] and "--max_dendrites=2" in command


def test_a_run_gets_what_wandb_agent_sets_but_no_sweep_id_w_and_b_never_issued(tmp_path: Path) -> None:
    files = TrialFiles(tmp_path, "study", "abc12345")
    env = trial_environment(job(), files, threads=3,
                            base={"WANDB_SERVICE": "x", "PATH": "/bin", "WANDB_SWEEP_ID": "agents-own"})
    assert "WANDB_SWEEP_ID" not in env and env["WANDB_RUN_ID"] == "abc12345"
    assert env["WANDB_SWEEP_PARAM_PATH"] == str(tmp_path / "wandb" / "sweep-study" / "config-abc12345.yaml")
    assert env["WANDB_PROJECT"] == "proj" and env["WANDB_RUN_GROUP"] == "study" and env["WANDB_MODE"] == "offline"
    assert env["DENDRISWEEP_OUT_DIR"] == str(tmp_path / "trials") and env["OMP_NUM_THREADS"] == "3"
    assert env["WANDB_SERVICE"] == "x"  # train_trial.py finishes its own run: it may share the agent's service


def test_another_program_gets_its_own_wandb_service_and_the_users_settings_win(tmp_path: Path) -> None:
    files = TrialFiles(tmp_path, "study", "r")
    env = trial_environment(job(ours=False), files, threads=1,
                            base={"WANDB_SERVICE": "x", "WANDB_MODE": "online", "OMP_NUM_THREADS": "8"})
    assert "WANDB_SERVICE" not in env
    assert env["WANDB_MODE"] == "online" and env["OMP_NUM_THREADS"] == "8"  # the user's own settings win


def test_the_local_launcher_gives_each_worker_its_gpu_and_its_share_of_the_cores(tmp_path: Path) -> None:
    """A real (tiny) process: worker 1 of 2 on --gpus 3,5 sees GPU 5 and half the cores, unless the user set them."""
    seen = tmp_path / "seen.json"
    code = (f"import json, os; json.dump({{k: os.environ.get(k) for k in ('CUDA_VISIBLE_DEVICES', 'OMP_NUM_THREADS')}},"
            f" open({str(seen)!r}, 'w'))")
    launcher = LocalLauncher(workers=2, gpus=("3", "5"), share_wandb=False)
    with launcher.session():
        observed = launcher.launch(job(command=("${interpreter}", "-c", code), program=None),
                                   TrialFiles(tmp_path, "study", "r"), worker=1, on_row=lambda row: False,
                                   stop=threading.Event())
    assert observed.exit_code == 0 and observed.stopped is None
    cores = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // 2))
    assert json.loads(seen.read_text()) == {"CUDA_VISIBLE_DEVICES": "5", "OMP_NUM_THREADS": cores}
