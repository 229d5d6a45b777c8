"""sweep/controller.py: the claim -> launch -> record loop, driven by a fake launcher (no processes)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from dendrisweep.contract import TrialRecord
from dendrisweep.sweep import optuna_adapter as adapter
from dendrisweep.sweep.controller import (
    AgentOptions,
    Claim,
    Controller,
    Pause,
    SweepSource,
    Tally,
    flapping,
    is_settled,
)
from dendrisweep.sweep.launch import Job, TrialFiles
from dendrisweep.sweep.settle import Observed
from dendrisweep.sweep.space import trial_params
from dendrisweep.sweep.spec import SweepSpec, parse_sweep
from dendrisweep.sweep.storage import RECORD_ATTR, mark_lost, stored_record
from tests.helpers import FakeLauncher, finished, record_of


def sweep(**extra: Any) -> SweepSpec:
    raw = {"program": "train.py", "method": "random", "metric": {"name": "loss", "goal": "minimize"},
           "parameters": {"x": {"min": 0.0, "max": 1.0}, "fixed": {"value": 3}}, **extra}
    return parse_sweep(raw, Path("fake.yaml"))


def options(tmp_path: Path, spec: SweepSpec, **extra: Any) -> AgentOptions:
    return AgentOptions(spec=spec, study_name="s", storage_url=f"sqlite:///{tmp_path / 's.db'}",
                        run_dir=tmp_path / "runs", progress=False, **extra)


def run(tmp_path: Path, spec: SweepSpec, launcher: FakeLauncher, **extra: Any) -> tuple[Controller, optuna.Study]:
    opts = options(tmp_path, spec, launcher=launcher, **extra)
    controller = Controller(opts, SweepSource(opts))
    controller.run()
    return controller, controller.open()


def test_a_sweep_runs_its_budget_and_stores_each_record_whole(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    controller, study = run(tmp_path, sweep(run_cap=4), launcher, workers=2)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4 and len(launcher.jobs) == 4
    assert launcher.sessions == 1  # one launcher session for the whole run, every worker's trials in it
    for trial in trials:
        assert set(trial.user_attrs) == {RECORD_ATTR}  # one attribute, the whole record
        record = record_of(trial)
        assert record.status == "finished" and trial.value == record.objective == record.value("loss")
        assert record.config == trial_params(controller.source.spec, trial.params)  # type: ignore[attr-defined]
    assert {files.run_id for _, files in launcher.jobs} == {record_of(t).run_id for t in trials}


def test_a_claim_is_recorded_running_with_its_folder_before_it_runs(tmp_path: Path) -> None:
    seen: list[TrialRecord | None] = []

    def during(job: Job, files: TrialFiles) -> None:
        (trial,) = controller.open().get_trials(states=(TrialState.RUNNING,))
        seen.append(stored_record(trial))

    opts = options(tmp_path, sweep(run_cap=1), launcher=FakeLauncher(during=during))
    controller = Controller(opts, SweepSource(opts))
    controller.run()
    (record,) = seen
    _, files = controller.launcher.jobs[0]  # type: ignore[attr-defined]
    assert record is not None and record.status == "running"
    assert (record.run_id, record.trial_dir) == (files.run_id, str(files.trial_dir))
    assert record.config == {"x": pytest.approx(record.config["x"]), "fixed": 3}


def test_each_job_is_the_sweeps_command_and_a_run_of_the_sweep(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    run(tmp_path, sweep(run_cap=1, project="proj"), launcher)
    ((job, files),) = launcher.jobs
    assert job.command == ("${env}", "${interpreter}", "${program}", "${args}") and job.program == "train.py"
    assert job.group == "s" and job.project == "proj" and not job.ours
    assert files.sweep_id == "s" and files.run_dir == (tmp_path / "runs").resolve()


def test_a_preempted_trial_runs_again_with_the_same_parameters(tmp_path: Path) -> None:
    launcher = FakeLauncher(lambda job, n: Observed(-15) if n == 1 else finished(job, n))
    _, study = run(tmp_path, sweep(run_cap=1), launcher)
    first, again = study.get_trials()
    assert first.state == TrialState.FAIL and record_of(first).status == "preempted"
    assert again.state == TrialState.COMPLETE and again.params == first.params
    assert adapter.retried(again) == [first.number]


def test_a_final_failure_counts_against_the_budget_and_is_not_retried(tmp_path: Path) -> None:
    launcher = FakeLauncher(lambda job, n: Observed(1, stderr_tail="boom"))
    _, study = run(tmp_path, sweep(run_cap=2), launcher, flapping_guard=False)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 2 and all(is_settled(t) for t in trials)
    assert all(record_of(t).reason == "exit code 1: boom" for t in trials)


def test_the_flapping_guard_stops_an_agent_whose_runs_keep_failing(tmp_path: Path) -> None:
    controller, study = run(tmp_path, sweep(run_cap=10), FakeLauncher(lambda job, n: Observed(1)))
    assert len(study.get_trials()) == 3 and controller.flapping == "3 runs failed in the first 60 s"


@pytest.mark.parametrize("failures, successes, window, most, expected", [
    ([1.0, 2.0], 0, 60, 5, None),
    ([1.0, 2.0, 3.0], 0, 60, 5, "3 runs failed in the first 60 s"),
    ([100.0, 200.0, 300.0, 400.0], 0, 60, 5, None),  # late failures: not flapping yet
    ([100.0, 200.0, 300.0, 400.0, 500.0], 4, 60, 5, "5 runs failed and only 4 finished"),
    ([100.0, 200.0, 300.0, 400.0, 500.0], 5, 60, 5, None),  # as many successes: keep going
    ([1.0, 2.0, 3.0], 0, 0, 5, None),  # window 0 (replicates): only the ratio rule
])
def test_flapping_follows_wandb_agents_two_rules(failures: list[float], successes: int, window: float, most: int,
                                                expected: str | None) -> None:
    assert flapping(failures, successes, window, most) == expected


def test_count_caps_this_agents_runs(tmp_path: Path) -> None:
    launcher = FakeLauncher()
    _, study = run(tmp_path, sweep(), launcher, count=2)
    assert len(study.get_trials()) == 2 and len(launcher.jobs) == 2


def test_reaching_the_metrics_target_ends_the_sweep(tmp_path: Path) -> None:
    spec = sweep(metric={"name": "loss", "goal": "minimize", "target": 2.0})
    launcher = FakeLauncher()
    _, study = run(tmp_path, spec, launcher, count=5)
    assert len(study.get_trials()) == 1  # every loss here is below 2


def test_a_pruner_stops_a_trial_through_the_values_it_logs(tmp_path: Path) -> None:
    spec = sweep(run_cap=1, early_terminate={"type": "hyperband", "min_iter": 1})
    opts = options(tmp_path, spec, launcher=FakeLauncher(rows=[{"loss": 5.0}, {"loss": 4.0}]))
    controller = Controller(opts, SweepSource(opts))
    controller.open().pruner = optuna.pruners.ThresholdPruner(upper=1.0)  # any loss above 1: prune
    controller.run()
    (trial,) = controller.open().get_trials()
    assert trial.state == TrialState.PRUNED and record_of(trial).status == "pruned"
    assert trial.intermediate_values == {1: 5.0}


def test_a_trial_marked_lost_while_it_runs_does_not_break_its_agent(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def lose_the_first(job: Job, files: TrialFiles) -> None:
        study = controller.open()
        running = study.get_trials(states=(TrialState.RUNNING,))
        if len(study.get_trials()) == 1:
            assert mark_lost(study, running[0], "marked lost by the test")

    opts = options(tmp_path, sweep(run_cap=1), launcher=FakeLauncher(during=lose_the_first))
    controller = Controller(opts, SweepSource(opts))
    controller.run()
    lost, again = controller.open().get_trials()
    assert record_of(lost).status == "lost" and again.state == TrialState.COMPLETE and again.params == lost.params
    assert f"trial {lost.number} was marked lost by another agent while it ran" in capsys.readouterr().err


def test_a_trial_whose_worker_went_silent_is_lost_and_its_parameters_run_again(tmp_path: Path) -> None:
    opts = options(tmp_path, sweep(run_cap=1), heartbeat=1, launcher=FakeLauncher())
    controller = Controller(opts, SweepSource(opts))
    study = controller.open()
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    adapter.study_storage(study).set_trial_system_attr(adapter.trial_id(orphan), adapter.HEARTBEAT, time.time() - 60)
    controller.run()
    lost, again = study.get_trials()
    assert lost.state == TrialState.FAIL and record_of(lost).status == "lost"
    assert "stopped heartbeating" in record_of(lost).reason
    assert again.state == TrialState.COMPLETE and again.params == lost.params


def test_a_preemption_notice_lets_the_running_trial_end_and_claims_nothing_more(tmp_path: Path) -> None:
    """SIGUSR1 (Slurm's notice, sent to the whole job): the agent drains; the trial it ran ends as it will."""
    def notice_during_the_first(job: Job, files: TrialFiles) -> None:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.2)  # the handler runs in the main thread

    launcher = FakeLauncher(during=notice_during_the_first)
    controller, study = run(tmp_path, sweep(run_cap=5), launcher)
    assert len(launcher.jobs) == 1 and controller.draining.is_set()
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # the agent's handler is gone with its run


@pytest.mark.parametrize("tally, expected", [
    (Tally(settled=3), Pause.DONE),
    (Tally(settled=2, running=1), Pause.WAIT),
    (Tally(settled=1, running=1, waiting=1), Claim),  # a queued retry may run: it is part of the budget
    (Tally(settled=1, running=1), Claim),
])
def test_the_budget_decides_between_a_claim_a_wait_and_done(tmp_path: Path, tally: Tally, expected: Any) -> None:
    opts = options(tmp_path, sweep(run_cap=3))
    study = optuna.create_study()
    claim = SweepSource(opts).next(study, tally)
    assert claim is expected if isinstance(expected, Pause) else isinstance(claim, Claim)


@pytest.mark.parametrize("yaml_project, flag, expected", [("yaml", "flag", "yaml"), (None, "flag", "flag"),
                                                          (None, None, "s")])
def test_runs_go_to_the_yamls_project_else_the_flags_else_the_studys_name(tmp_path: Path, yaml_project: str | None,
                                                                          flag: str | None, expected: str) -> None:
    spec = sweep(run_cap=1, **({"project": yaml_project} if yaml_project else {}))
    launcher = FakeLauncher()
    run(tmp_path, spec, launcher, project=flag)
    ((job, _),) = launcher.jobs
    assert job.project == expected
