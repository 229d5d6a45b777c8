"""Where a study lives: Optuna's RDB storage (SQLite by default, PostgreSQL to share across machines).

Workers never talk to each other, only to the database:
- a heartbeat per running trial; a trial whose worker died (SIGKILL, power loss) goes stale,
  is marked FAIL with the reason recorded, and its parameters are queued again;
- a budget lock (a file lock beside a SQLite file, an advisory lock in PostgreSQL) makes "count
  the settled and running trials, then start one" atomic, so a sweep never overshoots its budget;
  the same kind of lock lets agents that start together create the tables one at a time.
"""
from __future__ import annotations

import fcntl
import hashlib
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import TrialState

from dendrisweep.contract import LOST
from dendrisweep.errors import UsageError

MAX_RETRIES = 3
LOST_STATUS = LOST  # user attr `status` of a trial whose worker stopped heartbeating


def redact(url: str) -> str:
    """The URL without its password, for messages and reports."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  an unparsable URL holds nothing we can safely show
        return url.split("://", 1)[0] + "://..."


def quiet_optuna() -> None:
    """Keep consoles to progress bars and results: no per-trial log lines, no API-status warnings."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def default_storage_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def open_storage(url: str, heartbeat_seconds: int) -> RDBStorage:
    """Open (or create) the study database with heartbeats and retries of lost trials."""
    quiet_optuna()
    try:
        sqlite = _sqlite_path(url)
        if sqlite is not None:
            sqlite.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs: dict[str, Any] = ({"connect_args": {"timeout": 120}} if sqlite is not None
                                         else {"pool_pre_ping": True})
        with exclusive(url, "schema"):  # agents starting together would race to create the tables
            storage = RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_seconds,
                                 grace_period=3 * heartbeat_seconds,
                                 heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                                     max_retry=MAX_RETRIES))
        if sqlite is not None:
            _tune_sqlite(storage)
        return storage
    except Exception as exc:  # noqa: BLE001  driver missing, bad URL, server down, unwritable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"storage {redact(url)}: cannot open it ({first})") from None


def _tune_sqlite(storage: RDBStorage) -> None:
    """Write-ahead log + NORMAL sync: a commit costs no fsync (Optuna commits once per parameter),
    readers never block the writer, and a killed process still cannot corrupt the file."""
    import sqlalchemy

    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()  # connections opened before the listener get the pragmas too


_process_lock = threading.Lock()


@contextmanager
def exclusive(url: str, name: str) -> Iterator[None]:
    """A lock named `name` for everyone using this database: threads, processes and (PostgreSQL)
    machines. Used to serialise "count, then start a trial" per study, and schema creation."""
    with _process_lock:
        sqlite = _sqlite_path(url)
        if sqlite is not None:
            with open(f"{sqlite}.lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        elif url.startswith("postgresql"):
            import sqlalchemy
            from sqlalchemy.pool import NullPool

            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            engine = sqlalchemy.create_engine(url, poolclass=NullPool)
            try:
                with engine.connect() as conn:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                    try:
                        yield
                    finally:
                        conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            finally:
                engine.dispose()
        else:  # other databases: exact within this process only
            yield


def fail_lost_trials(study: optuna.Study) -> int:
    """Mark trials whose worker stopped heartbeating as FAIL (with why), and queue them again.

    Optuna's own `fail_stale_trials` cannot say why; this records `status=lost` and a reason on the
    trial first, while it is still RUNNING and can be written to.
    """
    storage = study._storage  # Optuna's caching wrapper; it forwards the heartbeat API
    if not isinstance(storage, BaseHeartbeat):
        return 0
    interval = storage.get_heartbeat_interval()
    if interval is None:
        return 0
    lost = 0
    for trial_id in storage._get_stale_trial_ids(study._study_id) + _never_beat(study, 3 * interval):
        reason = (f"worker stopped heartbeating (silent for over {3 * interval}s): killed or lost; "
                  "its parameters were queued again")
        try:
            storage.set_trial_user_attr(trial_id, "status", LOST_STATUS)
            storage.set_trial_user_attr(trial_id, "reason", reason)
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        lost += 1
        callback = storage.get_heartbeat_stale_trial_callback()
        if callback is not None:
            callback(study, storage.get_trial(trial_id))
    return lost


def _never_beat(study: optuna.Study, grace: int) -> list[int]:
    """RUNNING trials with no heartbeat at all, started over `grace` s ago: their worker died between
    claiming the trial and its first heartbeat (Optuna's stale check skips them forever)."""
    import sqlalchemy

    engine = getattr(getattr(study._storage, "_backend", None), "engine", None)
    if engine is None:
        return []
    cutoff = datetime.now() - timedelta(seconds=grace)  # Optuna stamps datetime_start with local now()
    running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
               if t.datetime_start is not None and t.datetime_start < cutoff]
    if not running:
        return []
    with engine.connect() as conn:
        beating = {row[0] for row in conn.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))}
    return [t._trial_id for t in running if t._trial_id not in beating]


class Heartbeat:
    """Records a running trial's heartbeat until stopped (Optuna's own thread is not public)."""

    def __init__(self, storage: BaseHeartbeat, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        interval = self._storage.get_heartbeat_interval() or 60
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # noqa: BLE001  a missed beat is retried; the grace period covers it
                time.sleep(1)
            if self._stop.wait(interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
