"""The trial contract, declared once: what a trial writes in its folder, the states a trial ends in,
and the keys of its result. Shared by the trial (train_trial.py), the agent and the analysis.

A trial's status (result.json `status`, the study's `status` attribute, the analysis' `state`):
- written by the trial itself: FINISHED, DIVERGED (the loss became NaN/inf; exit 0 so a sweep goes
  on), FAILED (any other error), KILLED (SIGTERM reached it);
- decided by the agent: PRUNED (hyperband stopped it), TIMEOUT (--timeout-per-trial), INTERRUPTED
  (the agent was stopped), PREEMPTED (a signal from outside stopped it), LOST (its agent died;
  another agent found its heartbeat gone);
- in the study, not yet ended: RUNNING, QUEUED.
"""

import secrets
import string

TRIAL_PREFIX = "trial-"
RESULT_FILE = "result.json"  # the summary (status, reason, metrics, config, versions)
HISTORY_FILE = "history.jsonl"  # one JSON line per epoch, flushed as it goes
MODEL_FILE = "best_model.pt"  # state dict + resolved config (weights_only loadable)
OUT_DIR_ENV = "DENDRISWEEP_OUT_DIR"  # default --out-directory, set by the agent

FINISHED, DIVERGED, FAILED, KILLED = "finished", "diverged", "failed", "killed"
PRUNED, TIMEOUT, INTERRUPTED, PREEMPTED, LOST = "pruned", "timeout", "interrupted", "preempted", "lost"
RUNNING, QUEUED = "running", "queued"
FINAL_FAILURES = (DIVERGED, FAILED, TIMEOUT)  # recorded and counted against the budget, never retried
RETRIED = (INTERRUPTED, PREEMPTED, LOST)  # not the trial's fault: its parameters run again

# What train_trial.py's result.json (and its W&B summary) reports about the best model, the keys a
# sweep may optimise and the analysis loads.
RESULT_METRICS = ("best_val_acc", "test_acc", "val_loss", "test_loss", "params", "macs", "dendrites_added",
                  "epochs_run")


def new_run_id() -> str:
    """A W&B-style run id (8 lowercase letters and digits); it also names the trial's folder."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
