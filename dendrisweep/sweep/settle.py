"""How a trial ended, decided once: from what the launcher saw and what the trial recorded, the final
status and reason, the objective the sampler is told, and whether its parameters run again; and, for the
trials read back (a study's, W&B runs'), the status each source's own states stand for.

Pure: no files, no processes, no study. The launcher (`launch.py`) observes, `settle` decides, the
controller stores the record and tells Optuna.
"""
from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from dendrisweep.contract import RETRIED, Status, TrialRecord, as_status, is_number

# Exit codes of a program stopped by SIGTERM or SIGINT (negative: by the signal; 128+: its handler exited)
_FROM_OUTSIDE = {-signal.SIGTERM: signal.SIGTERM, 128 + signal.SIGTERM: signal.SIGTERM,
                 -signal.SIGINT: signal.SIGINT, 128 + signal.SIGINT: signal.SIGINT}


@dataclass(frozen=True)
class Observed:
    """What the launcher saw of one trial process."""

    exit_code: int | None
    stopped: tuple[str, str] | None = None  # (PRUNED | TIMEOUT | INTERRUPTED, why) when the agent stopped it
    reported: TrialRecord | None = None  # its result.json, from a program keeping the trial contract
    summary: Mapping[str, Any] = field(default_factory=dict)  # its W&B run's summary
    logged: bool = False  # a W&B run file was found
    stderr_tail: str = ""
    seconds: float = 0.0  # process start to end


class Tell(Enum):
    """What Optuna is told."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"


@dataclass(frozen=True)
class Settled:
    record: TrialRecord  # what the study stores
    tell: Tell
    value: float | None  # the objective told with COMPLETE
    retry: bool  # not the trial's fault: queue its parameters again
    values: tuple[float, ...] | None = None  # every objective of a multi-objective sweep, told with COMPLETE


@dataclass(frozen=True)
class Objective:
    """The sweep's metric, as settling needs it."""

    metric: str | None  # None: a grid or random sweep without a metric (every finished run counts 0)
    maximize: bool = True
    impute: str = "worst"  # metric.impute: latest | best | worst (W&B's default)
    others: tuple[str, ...] = ()  # a multi-objective sweep's further metrics (`metrics:` after the first)


def status_of(seen: Observed) -> tuple[str, str]:
    """(status, reason) of a trial that ended."""
    code, reported = seen.exit_code, seen.reported
    if seen.stopped is not None:
        return seen.stopped
    if code == 0 and reported is not None and reported.status in (Status.FINISHED, Status.DIVERGED):
        return reported.status, reported.reason
    if code == 0 and reported is not None and reported.status == Status.STOPPED:  # not by this agent: from outside
        return Status.PREEMPTED, f"{reported.reason.split(' (')[0]} from outside the agent (preempted)"
    if code == 0 and reported is None:  # a program outside the trial contract: its exit code says it all
        return Status.FINISHED, ""
    if reported is not None and reported.status == Status.PREEMPTED:  # it knew: Slurm's notice, or --preemptible
        return Status.PREEMPTED, reported.reason
    if code in _FROM_OUTSIDE:  # a cluster scheduler's preemption: not the trial's fault
        name = signal.Signals(_FROM_OUTSIDE[code]).name
        return Status.PREEMPTED, f"stopped by {name} from outside the agent (preempted)"
    if reported is not None and reported.reason:
        return Status.FAILED, reported.reason
    if code is not None and code < 0:
        return Status.FAILED, f"killed by signal {signal.Signals(-code).name}"
    last = seen.stderr_tail.strip().splitlines()[-1] if seen.stderr_tail.strip() else "no output"
    return Status.FAILED, f"exit code {code}: {last}"


def impute(objective: Objective, logged: Sequence[float]) -> float | None:
    """W&B's metric.impute for a run that crashed after logging its metric: `latest` or `best` gives it
    that value so the search learns from it; `worst` (W&B's default) leaves it out of the samplers' data."""
    if not logged or objective.impute == "worst":
        return None
    if objective.impute == "latest":
        return logged[-1]
    return max(logged) if objective.maximize else min(logged)


def settle(started: TrialRecord, seen: Observed, objective: Objective, logged: Sequence[float] = ()) -> Settled:
    """The final record of a trial and what to tell Optuna. `started`: what the agent recorded when it
    launched the trial (run id, folder, parameters as delivered); `logged`: the metric's values as the
    run logged them while it ran."""
    status, reason = status_of(seen)
    # The richer record when the program keeps the trial contract, else what it logged to W&B; the
    # agent's own knowledge of the run fills what the program did not say.
    record = seen.reported if seen.reported is not None else TrialRecord.from_json(seen.summary)
    record = replace(record, run_id=record.run_id or started.run_id, trial_dir=record.trial_dir or started.trial_dir,
                     config=record.config or started.config)
    value = 0.0 if objective.metric is None else _reported(record, seen, objective.metric)
    # W&B's multi-objective scheduler tells a failed run as failed: no imputation with several metrics
    imputed = impute(objective, logged) if status == Status.FAILED and not objective.others else None
    values = [value, *(_reported(record, seen, name) for name in objective.others)]
    names = (objective.metric, *objective.others)
    missing = next((name for name, v in zip(names, values, strict=True) if v is None), None)
    if imputed is not None:
        value = imputed
    elif status == Status.FINISHED and missing is not None:
        status, reason = Status.FAILED, (f"the run logged no finite {missing} to W&B"
                                         f"{'' if seen.logged else ' (no W&B run found)'}")
    counted = status == Status.FINISHED or imputed is not None
    record = replace(record, status=status, reason=reason, exit_code=seen.exit_code, agent_seconds=seen.seconds,
                     objective=value if counted else None, imputed=objective.impute if imputed is not None else None,
                     stderr_tail="" if status == Status.FINISHED else seen.stderr_tail)
    tell = Tell.COMPLETE if counted else Tell.PRUNED if status == Status.PRUNED else Tell.FAIL
    told = tuple(float(v) for v in values if v is not None) if counted and objective.others else None
    return Settled(record, tell, value if counted else None, retry=status in RETRIED, values=told)


def _reported(record: TrialRecord, seen: Observed, metric: str) -> float | None:
    """A metric's value from the trial's record, else from its W&B summary (logged there, not to result.json)."""
    value = record.value(metric)
    if value is None and is_number(seen.summary.get(metric)):
        value = float(seen.summary[metric])
    return value


# W&B's run states, as its API lists a run, to ours
_WANDB_STATES = {"finished": Status.FINISHED, "failed": Status.FAILED, "crashed": Status.FAILED,
                 "killed": Status.KILLED, "running": Status.RUNNING, "pending": Status.QUEUED,
                 "preempting": Status.PREEMPTED, "preempted": Status.PREEMPTED}  # W&B requeues these
# Optuna's states of a trial that has not ended, or whose record does not say how it ended, to ours
_OPTUNA_STATES = {"COMPLETE": Status.FINISHED, "PRUNED": Status.PRUNED, "FAIL": Status.FAILED,
                  "RUNNING": Status.RUNNING, "WAITING": Status.QUEUED}


def wandb_status(state: str, recorded: Any = None) -> str:
    """A W&B run's status: what the trial recorded (its summary's `status`), else W&B's run state as ours
    (a state W&B adds later keeps W&B's word). An offline run file's state is `running` until it has an
    exit code, then `finished` for 0 and `failed` for any other."""
    return as_status(recorded or _WANDB_STATES.get(state, state))


def offline_state(exit_code: int | None) -> str:
    """The W&B run state of an offline run file with this exit code (None: the run has not ended)."""
    return "running" if exit_code is None else "finished" if exit_code == 0 else "failed"


def study_status(state: str, recorded: str | None) -> str:
    """A study trial's status from its Optuna state (`COMPLETE`, `RUNNING`, ...) and its stored record's status
    (None: no record): a trial not yet ended is running or queued whatever record it carries (a retry
    inherits its lost trial's); an ended one is what the agent settled it as."""
    ended = state not in ("RUNNING", "WAITING") and recorded not in (None, Status.RUNNING)
    return as_status(recorded) if ended else _OPTUNA_STATES.get(state, Status.FAILED)
