"""Audit a study against the files its trials wrote: is anything lost, duplicated or unexplained?

This is how the reliability benches (bench/chaos.py, bench/concurrency.py) and tests turn "nothing is
ever lost" into numbers: every count below except `complete`, `lost` and `retried` must be 0.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from dendrisweep.contract import RESULT_FILE, TRIAL_PREFIX, Status, TrialRecord
from dendrisweep.sweep import optuna_adapter as adapter
from dendrisweep.sweep.controller import is_settled
from dendrisweep.sweep.settle import study_status
from dendrisweep.sweep.storage import stored_record


@dataclass
class Audit:
    trials: int = 0
    complete: int = 0
    settled: int = 0
    lost: int = 0  # workers killed mid-trial: FAIL with status `lost` and a reason
    retried: int = 0  # lost trials whose parameters were queued again
    lost_not_retried: int = 0  # lost trials below the retry limit with no retry
    still_running: int = 0  # RUNNING or WAITING after every agent has exited
    failed_without_reason: int = 0
    duplicate_run_ids: int = 0
    duplicate_retries: int = 0  # one failed trial re-run more than once
    complete_without_files: int = 0  # a COMPLETE trial whose result.json is missing
    files_without_trial: int = 0  # a finished result.json no study trial points to
    over_budget: int = 0

    def problems(self) -> dict[str, int]:
        """The counts that must be zero."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("trials", "complete", "settled", "lost", "retried") and v}


def audit_study(study: optuna.Study, trial_folders: Iterable[Path], budget: int | None = None) -> Audit:
    """Count what the study and the trial folders (each agent's `runs/<study>/trials`) say."""
    trials = study.get_trials(deepcopy=False)
    a = Audit(trials=len(trials))
    # A retry's chain lists every trial before it: the last is the one it re-runs.
    retries = Counter(chain[-1] for chain in map(adapter.retried, trials) if chain)
    a.duplicate_retries = sum(1 for n in retries.values() if n > 1)
    records = {t.number: stored_record(t) for t in trials}
    run_ids = Counter(r.run_id for t in trials if (r := records[t.number]) is not None and r.run_id
                      and t.state != TrialState.WAITING)  # a queued retry carries its lost trial's record
    a.duplicate_run_ids = sum(1 for n in run_ids.values() if n > 1)
    for t in trials:
        record = records[t.number]
        a.complete += t.state == TrialState.COMPLETE
        a.settled += is_settled(t)
        a.still_running += t.state in (TrialState.RUNNING, TrialState.WAITING)
        if t.state == TrialState.FAIL and not (record and record.reason):
            a.failed_without_reason += 1
        if study_status(t.state.name, record.status if record else None) == Status.LOST:
            a.lost += 1
            if t.number in retries:
                a.retried += 1
            elif len(adapter.retried(t)) < adapter.MAX_RETRIES:
                a.lost_not_retried += 1
        if t.state == TrialState.COMPLETE and not (Path(record.trial_dir if record and record.trial_dir else "")
                                                   / RESULT_FILE).is_file():
            a.complete_without_files += 1
    for folder in trial_folders:
        for result in folder.glob(f"{TRIAL_PREFIX}*/{RESULT_FILE}"):
            try:
                finished = TrialRecord.from_json(json.loads(result.read_text())).status == Status.FINISHED
            except (OSError, ValueError, TypeError):
                finished = False  # torn by a kill: the trial never finished
            if finished and result.parent.name.removeprefix(TRIAL_PREFIX) not in run_ids:
                a.files_without_trial += 1
    if budget is not None:
        a.over_budget = max(0, a.settled - budget)
    return a
