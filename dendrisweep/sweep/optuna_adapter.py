"""Everything dendrisweep needs from Optuna beyond its documented study API, in one place.

requirements.txt bounds Optuna to the major tested here (5); tests/test_optuna_adapter.py checks every
function below on SQLite, in memory and through Optuna's gRPC storage proxy, so an upgrade that breaks
one fails there, not in the middle of a sweep.
- storages: `rdb_storage` (RDBStorage, SQLite tuned for many writers) and `grpc_proxy`
  (GrpcStorageProxy), opened the way dendrisweep needs them;
- `trial_id`, `study_storage`, `study_id`: Optuna's storage API is keyed by ids it does not expose
  publicly (`_trial_id`, `_storage`, `_study_id`);
- heartbeats: Optuna's own run only inside `study.optimize` (we ask and tell) and not at all through
  its gRPC proxy; ours are a trial system attribute that every storage keeps, written by a thread per
  running trial and read by every agent's check for lost trials (`stale_trials`, `fail`, `reload`);
- `storage_lock`: a lock any storage can hold (a study created under a reserved name: creation is
  atomic because names are unique), for the gRPC proxy, which neither a file lock nor PostgreSQL's
  advisory lock can reach through;
- `retry` and `retried`: Optuna's public RetryHeartbeatStaleTrialCallback and its retry history;
- `read_rdb`: the loader's fast path, five SQL queries on Optuna's tables instead of its ORM.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, Trial, TrialState

Storage = BaseStorage  # what dendrisweep holds of a storage: a handle it passes back here

HEARTBEAT = "dendrisweep:heartbeat"  # trial system attribute: when its worker last said it is alive
LOCK_PREFIX = "dendrisweep-lock:"
LOCK_LEASE_SECONDS = 60.0  # a lock older than this was left by a dead holder and is broken
MAX_RETRIES = 3


def rdb_storage(url: str, sqlite: bool) -> Storage:
    """Optuna's RDB storage on `url` (tables created if missing). SQLite: a long busy timeout, a
    write-ahead log and NORMAL sync, so a commit costs no fsync (Optuna commits once per parameter),
    readers never block the writer, and a killed process still cannot corrupt the file."""
    import sqlalchemy
    from optuna.storages import RDBStorage

    storage = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}} if sqlite else {"pool_pre_ping": True})
    if sqlite:
        def on_connect(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        sqlalchemy.event.listen(storage.engine, "connect", on_connect)
        storage.engine.dispose()  # connections opened before the listener get the pragmas too
    return storage


def grpc_proxy(host: str, port: int) -> Storage:
    """Optuna's GrpcStorageProxy, checked with one call (a wrong port fails here)."""
    # The agent forks a process per trial; gRPC's fork handlers would abort those children (SIGABRT in
    # epoll). They exec the trial at once and never use gRPC, so the handlers are not wanted.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    from optuna.storages import GrpcStorageProxy

    proxy = GrpcStorageProxy(host=host, port=port)
    proxy.wait_server_ready(timeout=10)
    return proxy


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


def stale_trials(study: optuna.Study, grace: float) -> list[FrozenTrial]:
    """RUNNING trials silent for more than `grace` seconds."""
    now = time.time()
    running = study_storage(study).get_all_trials(study_id(study), deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if now - last_sign_of_life(t) > grace]


def fail(study: optuna.Study, trial: FrozenTrial, user_attrs: Mapping[str, Any]) -> bool:
    """Set `user_attrs` on a trial another worker holds, then fail it; False when it already ended (its
    worker recorded it, or another agent failed it first). The attributes go first, while the trial is
    still RUNNING and writable."""
    storage, tid = study_storage(study), trial_id(trial)
    try:
        for key, value in user_attrs.items():
            storage.set_trial_user_attr(tid, key, value)
        return bool(storage.set_trial_state_values(tid, state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def reload(study: optuna.Study, trial: FrozenTrial) -> FrozenTrial:
    """The trial as the storage holds it now."""
    return study_storage(study).get_trial(trial_id(trial))


def retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a failed trial's parameters (and user attributes) again, up to MAX_RETRIES per chain."""
    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, trial)


def retried(trial: FrozenTrial) -> list[int]:
    """The numbers of the trials this one re-runs, oldest first (its chain of retries); [] for a first run."""
    return list(RetryHeartbeatStaleTrialCallback.retry_history(trial))


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


@dataclass(frozen=True)
class StoredTrial:
    """A trial as the loader needs it: whatever storage it came from, read the fastest way."""

    number: int
    state: str  # Optuna's TrialState name: COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    value: float | None
    params: dict[str, Any]
    user_attrs: dict[str, Any]


def stored_trials(study: optuna.Study) -> list[StoredTrial]:
    """Every trial of a study, through Optuna's API (any storage, journal files included)."""
    return [StoredTrial(t.number, t.state.name, t.value, dict(t.params), dict(t.user_attrs))
            for t in study.get_trials(deepcopy=False)]


def read_rdb(url: str, study_name: str) -> tuple[dict[str, Any], list[StoredTrial]] | None:
    """(study user attributes, trials) of an RDB study in five queries, or None when there is no such
    study. Optuna's ORM would also build every intermediate value (40 per trial) and takes ~2.6 s for
    800 trials; this ~0.3 s."""
    import sqlalchemy
    from optuna.distributions import json_to_distribution

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            def rows(sql: str, **params: Any) -> list[Any]:
                return list(conn.execute(sqlalchemy.text(sql), params))

            found = rows("SELECT study_id FROM studies WHERE study_name = :name", name=study_name)
            if not found:
                return None
            sid = found[0][0]
            study_attrs = {k: json.loads(v) for k, v in
                           rows("SELECT key, value_json FROM study_user_attributes WHERE study_id = :s", s=sid)}
            trials = rows("SELECT trial_id, number, state FROM trials WHERE study_id = :s ORDER BY number", s=sid)
            join = "JOIN trials t ON t.trial_id = x.trial_id WHERE t.study_id = :s"
            values = {tid: (None if kind != "FINITE" else value) for tid, value, kind in
                      rows(f"SELECT x.trial_id, x.value, x.value_type FROM trial_values x {join} AND x.objective = 0",
                           s=sid)}
            attrs: dict[int, dict[str, Any]] = {}
            for tid, key, value in rows(f"SELECT x.trial_id, x.key, x.value_json FROM trial_user_attributes x {join}",
                                        s=sid):
                attrs.setdefault(tid, {})[key] = json.loads(value)
            params: dict[int, dict[str, Any]] = {}
            distributions: dict[str, Any] = {}
            for tid, name, value, dist in rows(
                    f"SELECT x.trial_id, x.param_name, x.param_value, x.distribution_json FROM trial_params x {join}",
                    s=sid):
                distribution = distributions.get(dist) or distributions.setdefault(dist, json_to_distribution(dist))
                params.setdefault(tid, {})[name] = distribution.to_external_repr(value)
    finally:
        engine.dispose()
    return study_attrs, [StoredTrial(number, state, values.get(tid), params.get(tid, {}), attrs.get(tid, {}))
                         for tid, number, state in trials]
