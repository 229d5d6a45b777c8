"""sweep/settle.py: how a trial ended, decided case by case from what the launcher saw and what it recorded."""
from __future__ import annotations

import pytest

from dendrisweep.contract import Status, TrialRecord
from dendrisweep.sweep.settle import (
    Objective,
    Observed,
    Tell,
    offline_state,
    settle,
    status_of,
    study_status,
    wandb_status,
)

STARTED = TrialRecord(run_id="r1", trial_dir="/runs/s/trials/trial-r1", config={"lr": 0.1})
ACCURACY = Objective("best_val_acc", maximize=True)


def reported(status: str = "finished", reason: str = "", **fields: object) -> TrialRecord:
    return TrialRecord.from_json({"run_id": "r1", "status": status, "reason": reason, "config": {"lr": 0.1, "x": 1},
                                  **fields})


def test_a_finished_trial_is_told_its_metric() -> None:
    settled = settle(STARTED, Observed(0, reported=reported(best_val_acc=0.9), seconds=3.5), ACCURACY)
    assert settled.tell == Tell.COMPLETE and settled.value == 0.9 and not settled.retry
    record = settled.record
    assert (record.status, record.objective, record.agent_seconds, record.exit_code) == ("finished", 0.9, 3.5, 0)
    assert record.config == {"lr": 0.1, "x": 1}  # the trial's resolved config, not the parameters delivered


def test_a_diverged_trial_exits_0_and_is_a_final_failure() -> None:
    settled = settle(STARTED, Observed(0, reported=reported("diverged", "loss became nan")), ACCURACY)
    assert settled.tell == Tell.FAIL and not settled.retry
    assert (settled.record.status, settled.record.reason) == ("diverged", "loss became nan")
    assert settled.record.objective is None


def test_another_program_is_read_from_its_wandb_summary() -> None:
    seen = Observed(0, summary={"loss": 0.2, "_step": 9}, logged=True)
    settled = settle(STARTED, seen, Objective("loss", maximize=False))
    assert settled.tell == Tell.COMPLETE and settled.value == 0.2
    assert (settled.record.run_id, settled.record.trial_dir, settled.record.config) == (
        "r1", STARTED.trial_dir, {"lr": 0.1})  # what the agent knew fills what the program did not say


def test_a_metric_only_in_the_wandb_summary_still_counts() -> None:
    seen = Observed(0, reported=reported(), summary={"best_val_acc": 0.7}, logged=True)
    assert settle(STARTED, seen, ACCURACY).value == 0.7


@pytest.mark.parametrize("logged, reason", [
    (True, "the run logged no finite best_val_acc to W&B"),
    (False, "the run logged no finite best_val_acc to W&B (no W&B run found)"),
])
def test_finishing_without_the_metric_is_a_failure(logged: bool, reason: str) -> None:
    settled = settle(STARTED, Observed(0, summary={}, logged=logged), ACCURACY)
    assert settled.tell == Tell.FAIL and (settled.record.status, settled.record.reason) == ("failed", reason)


def test_a_sweep_without_a_metric_counts_every_finished_run_as_0() -> None:
    settled = settle(STARTED, Observed(0), Objective(None))
    assert settled.tell == Tell.COMPLETE and settled.value == 0.0


@pytest.mark.parametrize("stopped, tell, retry", [
    (("pruned", "pruned after epoch 3 (hyperband)"), Tell.PRUNED, False),
    (("timeout", "timed out after 3s"), Tell.FAIL, False),
    (("interrupted", "the agent was interrupted"), Tell.FAIL, True),
])
def test_what_the_agent_stopped_is_recorded_as_it_stopped_it(stopped: tuple[str, str], tell: Tell,
                                                              retry: bool) -> None:
    seen = Observed(143, stopped=stopped, reported=reported("killed", "received SIGTERM", best_val_acc=0.5))
    settled = settle(STARTED, seen, ACCURACY)
    assert (settled.record.status, settled.record.reason) == stopped
    assert settled.tell == tell and settled.retry == retry and settled.value is None


@pytest.mark.parametrize("code, signal_name", [(-15, "SIGTERM"), (143, "SIGTERM"), (-2, "SIGINT"), (130, "SIGINT")])
def test_a_signal_from_outside_is_a_preemption_and_runs_again(code: int, signal_name: str) -> None:
    settled = settle(STARTED, Observed(code, reported=reported("killed", "received SIGTERM")), ACCURACY)
    assert settled.record.status == "preempted" and settled.retry and settled.tell == Tell.FAIL
    assert settled.record.reason == f"stopped by {signal_name} from outside the agent (preempted)"


def test_a_trial_that_recorded_its_own_preemption_keeps_its_reason_and_runs_again() -> None:
    why = "preempted (SIGUSR1 from the cluster scheduler); W&B requeues it"
    settled = settle(STARTED, Observed(143, reported=reported("preempted", why)), ACCURACY)
    assert (settled.record.status, settled.record.reason) == ("preempted", why) and settled.retry


@pytest.mark.parametrize("seen, reason", [
    (Observed(1, reported=reported("failed", "RuntimeError: PAI exploded")), "RuntimeError: PAI exploded"),
    (Observed(-9), "killed by signal SIGKILL"),
    (Observed(3, stderr_tail="loading\nscripted failure\n"), "exit code 3: scripted failure"),
    (Observed(2, stderr_tail=""), "exit code 2: no output"),
])
def test_a_failure_says_why_in_one_line(seen: Observed, reason: str) -> None:
    assert status_of(seen) == ("failed", reason)
    settled = settle(STARTED, seen, ACCURACY)
    assert settled.tell == Tell.FAIL and not settled.retry and settled.record.reason == reason
    assert settled.record.stderr_tail == seen.stderr_tail  # kept for a trial that did not finish


def test_a_finished_trial_keeps_no_stderr_tail() -> None:
    seen = Observed(0, reported=reported(best_val_acc=0.9), stderr_tail="warnings")
    assert settle(STARTED, seen, ACCURACY).record.stderr_tail == ""


@pytest.mark.parametrize("impute, maximize, value", [("latest", True, 0.6), ("best", True, 0.8),
                                                      ("best", False, 0.5)])
def test_impute_gives_a_crashed_run_its_logged_value(impute: str, maximize: bool, value: float) -> None:
    objective = Objective("best_val_acc", maximize, impute)
    settled = settle(STARTED, Observed(1), objective, logged=[0.5, 0.8, 0.6])
    assert settled.tell == Tell.COMPLETE and settled.value == value
    assert settled.record.status == "failed" and settled.record.imputed == impute  # still a failure in the record


def test_impute_worst_leaves_a_crashed_run_out() -> None:
    settled = settle(STARTED, Observed(1), Objective("best_val_acc", True, "worst"), logged=[0.5, 0.8])
    assert settled.tell == Tell.FAIL and settled.value is None and settled.record.imputed is None


def test_impute_needs_a_logged_value_and_a_failure() -> None:
    assert settle(STARTED, Observed(1), Objective("best_val_acc", True, "latest")).tell == Tell.FAIL
    stopped = Observed(143, stopped=("timeout", "timed out after 3s"))
    assert settle(STARTED, stopped, Objective("best_val_acc", True, "latest"), logged=[0.5]).tell == Tell.FAIL


def test_a_trial_that_stopped_itself_on_a_signal_from_outside_the_agent_runs_again() -> None:
    """train_trial.py records `stopped` and exits 0 on SIGTERM (W&B's agent must not count it as failed);
    under our agent a stop it did not ask for is a preemption."""
    seen = Observed(0, reported=reported("stopped", "stopped by SIGTERM (its agent, or W&B, asked the run to stop)",
                                         best_val_acc=0.7))
    settled = settle(STARTED, seen, ACCURACY)
    assert settled.record.status == "preempted" and settled.retry and settled.tell == Tell.FAIL
    assert settled.record.reason == "stopped by SIGTERM from outside the agent (preempted)"
    assert settled.record.best_val_acc == 0.7  # what it measured before it stopped is kept


def test_a_settled_status_is_a_status_member_written_as_its_text() -> None:
    record = settle(STARTED, Observed(0, reported=reported(best_val_acc=0.9)), ACCURACY).record
    assert record.status is Status.FINISHED and record.to_json()["status"] == "finished"


@pytest.mark.parametrize("state, recorded, expected", [
    ("finished", None, Status.FINISHED), ("crashed", None, Status.FAILED), ("failed", None, Status.FAILED),
    ("killed", None, Status.KILLED), ("running", None, Status.RUNNING), ("pending", None, Status.QUEUED),
    ("finished", "diverged", Status.DIVERGED),  # what the trial recorded says more than W&B's state
    ("preempting", None, Status.PREEMPTED), ("preempted", None, Status.PREEMPTED),  # W&B requeues these
    ("some-new-state", None, "some-new-state"),  # a state W&B adds later keeps W&B's word
])
def test_a_wandb_runs_status_is_its_record_else_its_state(state: str, recorded: str | None, expected: str) -> None:
    assert wandb_status(state, recorded) == expected


def test_an_offline_run_file_is_running_until_it_has_an_exit_code() -> None:
    assert [wandb_status(offline_state(code)) for code in (None, 0, 1)] == ["running", "finished", "failed"]
    assert wandb_status(offline_state(None), "stopped") == "stopped"


def test_a_study_trial_is_what_the_agent_settled_once_it_ended() -> None:
    assert study_status("FAIL", "lost") is Status.LOST and study_status("COMPLETE", "finished") is Status.FINISHED
    assert study_status("WAITING", "lost") is Status.QUEUED  # a queued retry carries its lost trial's record
    assert study_status("RUNNING", None) is Status.RUNNING and study_status("COMPLETE", None) is Status.FINISHED
    assert study_status("PRUNED", "running") is Status.PRUNED  # ended, its record never settled
