"""Everything dendrisweep needs from Optuna beyond its documented study API, in one place.

requirements.txt bounds Optuna to the major tested here (5); tests/test_optuna_adapter.py checks every
function below on SQLite, in memory and through Optuna's gRPC storage proxy, so an upgrade that breaks
one fails there, not in the middle of a sweep.
- `trial_id`, `study_storage`, `study_id`: Optuna's storage API is keyed by ids it does not expose
  publicly (`_trial_id`, `_storage`, `_study_id`);
- heartbeats: Optuna's own run only inside `study.optimize` (we ask and tell) and not at all through
  its gRPC proxy; ours are a trial system attribute that every storage keeps, written by a thread per
  running trial and read by every agent's check for lost trials;
- `storage_lock`: a lock any storage can hold (a study created under a reserved name: creation is
  atomic because names are unique), for the gRPC proxy, which neither a file lock nor PostgreSQL's
  advisory lock can reach through;
- `retry`: Optuna's public RetryHeartbeatStaleTrialCallback, called by us when we find a trial lost.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime

import optuna
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, Trial, TrialState

HEARTBEAT = "dendrisweep:heartbeat"  # trial system attribute: when its worker last said it is alive
LOCK_PREFIX = "dendrisweep-lock:"
LOCK_LEASE_SECONDS = 60.0  # a lock older than this was left by a dead holder and is broken
MAX_RETRIES = 3


def trial_id(trial: Trial | FrozenTrial) -> int:
    return int(trial._trial_id)


def study_storage(study: optuna.Study) -> BaseStorage:
    return study._storage


def study_id(study: optuna.Study) -> int:
    return int(study._study_id)


def beat(storage: BaseStorage, trial: int) -> None:
    """Record that the worker running `trial` is alive (its wall clock)."""
    storage.set_trial_system_attr(trial, HEARTBEAT, time.time())


def last_sign_of_life(trial: FrozenTrial) -> float:
    """The trial's last heartbeat, or its start for a worker that died before its first beat."""
    stamp = trial.system_attrs.get(HEARTBEAT)
    if isinstance(stamp, (int, float)):
        return float(stamp)
    started = trial.datetime_start or datetime.now()  # Optuna stamps local time
    return started.timestamp()


def stale_trials(storage: BaseStorage, study: int, grace: float) -> list[FrozenTrial]:
    """RUNNING trials silent for more than `grace` seconds."""
    now = time.time()
    running = storage.get_all_trials(study, deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if now - last_sign_of_life(t) > grace]


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's parameters (and user attributes) again, up to MAX_RETRIES per chain."""
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, trial)


class Heartbeat:
    """Beats for one running trial every `interval` seconds until stopped."""

    def __init__(self, storage: BaseStorage, trial: int, interval: float) -> None:
        self._storage, self._trial, self._interval = storage, trial, interval
        self._stop = threading.Event()
        beat(storage, trial)  # at once: the trial is never without one once its worker holds it
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                beat(self._storage, self._trial)
            except Exception:  # noqa: BLE001  a missed beat is retried; the grace period covers it
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def storage_lock(storage: BaseStorage, name: str, lease: float = LOCK_LEASE_SECONDS) -> Iterator[None]:
    """Hold the lock `name` for everyone using `storage`; a lock held past `lease` is broken."""
    lock = LOCK_PREFIX + name
    first_seen: float | None = None
    while True:
        try:
            held = storage.create_new_study([StudyDirection.MINIMIZE], lock)
            break
        except optuna.exceptions.DuplicatedStudyError:
            first_seen = first_seen or time.monotonic()
            if time.monotonic() - first_seen > lease:  # its holder died between taking and releasing it
                with suppress(KeyError):
                    storage.delete_study(storage.get_study_id_from_name(lock))
                first_seen = None
            time.sleep(0.02)
    try:
        yield
    finally:
        storage.delete_study(held)
