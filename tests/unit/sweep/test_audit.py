"""sweep/audit.py: a study checked against the files its trials wrote (trials run by a fake launcher)."""
from __future__ import annotations

import json
from pathlib import Path

from dendrisweep.sweep.audit import audit_study
from dendrisweep.sweep.controller import AgentOptions, Controller, SweepSource
from dendrisweep.sweep.launch import Job, TrialFiles
from dendrisweep.sweep.settle import Observed
from dendrisweep.sweep.spec import parse_sweep
from tests.helpers import FakeLauncher, finished

SPEC = parse_sweep({"program": "train.py", "method": "random", "metric": {"name": "loss", "goal": "minimize"},
                    "run_cap": 3, "parameters": {"x": {"min": 0.0, "max": 1.0}}}, Path("a.yaml"))


def write_result(job: Job, files: TrialFiles) -> None:
    files.trial_dir.mkdir(parents=True)
    (files.trial_dir / "result.json").write_text(json.dumps({"status": "finished", "run_id": files.run_id}))


def sweep(tmp_path: Path, launcher: FakeLauncher) -> Controller:
    opts = AgentOptions(spec=SPEC, study_name="a", storage_url=f"sqlite:///{tmp_path / 'a.db'}",
                        run_dir=tmp_path / "runs", progress=False, launcher=launcher)
    controller = Controller(opts, SweepSource(opts))
    controller.run()
    return controller


def test_a_sweep_whose_trials_left_their_files_has_no_problem(tmp_path: Path) -> None:
    controller = sweep(tmp_path, FakeLauncher(during=write_result))
    audit = audit_study(controller.open(), [tmp_path / "runs" / "trials"], budget=3)
    assert (audit.trials, audit.complete, audit.settled) == (3, 3, 3) and audit.problems() == {}


def test_a_complete_trial_without_its_files_is_counted(tmp_path: Path) -> None:
    controller = sweep(tmp_path, FakeLauncher())  # reports finished, writes nothing
    audit = audit_study(controller.open(), [tmp_path / "runs" / "trials"], budget=3)
    assert audit.problems() == {"complete_without_files": 3}


def test_finished_files_no_trial_points_to_are_counted(tmp_path: Path) -> None:
    controller = sweep(tmp_path, FakeLauncher(during=write_result))
    stray = tmp_path / "runs" / "trials" / "trial-stray123"
    stray.mkdir()
    (stray / "result.json").write_text(json.dumps({"status": "finished"}))
    (tmp_path / "runs" / "trials" / "trial-torn4567").mkdir()
    (tmp_path / "runs" / "trials" / "trial-torn4567" / "result.json").write_text('{"status": "fini')  # killed
    audit = audit_study(controller.open(), [tmp_path / "runs" / "trials"], budget=2)
    assert audit.problems() == {"files_without_trial": 1, "over_budget": 1}


def test_a_preempted_trial_and_its_retry_leave_no_problem(tmp_path: Path) -> None:
    controller = sweep(tmp_path, FakeLauncher(lambda job, n: Observed(-15) if n == 1 else finished(job, n),
                                              during=write_result))
    audit = audit_study(controller.open(), [tmp_path / "runs" / "trials"], budget=3)
    assert audit.trials == 4 and audit.complete == 3 and audit.problems() == {}
