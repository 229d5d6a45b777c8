"""Where a study lives: Optuna's RDB storage (SQLite by default, PostgreSQL to share across machines),
or Optuna's gRPC storage proxy in front of one (`grpc://host:port`, for hundreds of workers).

Workers never talk to each other, only to the storage:
- a heartbeat per running trial (optuna_adapter: ours, so it works through the proxy too); a trial
  whose worker died (SIGKILL, power loss) goes stale, is marked FAIL with the reason recorded, and its
  parameters are queued again;
- a budget lock (a file lock beside a SQLite file, an advisory lock in PostgreSQL, a lock study
  through the gRPC proxy) makes "count the settled and running trials, then start one" atomic, so a
  sweep never overshoots its budget; the same kind of lock lets agents that start together create
  the tables one at a time.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.trial import TrialState

from dendrisweep.contract import LOST
from dendrisweep.errors import UsageError
from dendrisweep.sweep import optuna_adapter as adapter

LOST_STATUS = LOST  # user attr `status` of a trial whose worker stopped heartbeating
GRPC = "grpc://"


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


def default_storage_url(run_dir: Path) -> str:
    return f"sqlite:///{(run_dir / 'study.db').resolve()}"


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None


def open_storage(url: str) -> BaseStorage:
    """Open (or create) the study storage: an RDB URL, or `grpc://host:port` (Optuna's storage proxy)."""
    quiet_optuna()
    try:
        if url.startswith(GRPC):
            return _grpc_proxy(url)
        sqlite = _sqlite_path(url)
        if sqlite is not None:
            sqlite.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs: dict[str, Any] = ({"connect_args": {"timeout": 120}} if sqlite is not None
                                         else {"pool_pre_ping": True})
        with exclusive(url, "schema"):  # agents starting together would race to create the tables
            storage = RDBStorage(url, engine_kwargs=engine_kwargs)
        if sqlite is not None:
            _tune_sqlite(storage)
        return storage
    except Exception as exc:  # noqa: BLE001  driver missing, bad URL, server down, unwritable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"storage {redact(url)}: cannot open it ({first})") from None


def _grpc_proxy(url: str) -> BaseStorage:
    """Optuna's GrpcStorageProxy for grpc://host:port, checked with one call (a wrong port fails here)."""
    host, _, port = url[len(GRPC):].rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("expected grpc://host:port")
    # The agent forks a process per trial; gRPC's fork handlers would abort those children (SIGABRT in
    # epoll). They exec the trial at once and never use gRPC, so the handlers are not wanted.
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    from optuna.storages import GrpcStorageProxy

    proxy = GrpcStorageProxy(host=host, port=int(port))
    proxy.wait_server_ready(timeout=10)
    return proxy


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
def exclusive(url: str, name: str, storage: BaseStorage | None = None) -> Iterator[None]:
    """A lock named `name` for everyone using this storage: threads, processes and (PostgreSQL, the gRPC
    proxy given its `storage`) machines. Serialises "count, then start a trial" per study, and schema
    creation."""
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
        elif url.startswith(GRPC) and storage is not None:
            with adapter.storage_lock(storage, name):
                yield
        else:  # other databases: exact within this process only
            yield


def fail_lost_trials(study: optuna.Study, grace: float) -> int:
    """Mark trials whose worker stopped heartbeating for over `grace` seconds as FAIL (with why), and
    queue them again. The reason goes on the trial first, while it is still RUNNING and writable."""
    storage = adapter.study_storage(study)
    lost = 0
    for trial in adapter.stale_trials(storage, adapter.study_id(study), grace):
        reason = (f"worker stopped heartbeating (silent for over {grace:g}s): killed or lost; "
                  "its parameters were queued again")
        tid = adapter.trial_id(trial)
        try:
            storage.set_trial_user_attr(tid, "status", LOST_STATUS)
            storage.set_trial_user_attr(tid, "reason", reason)
            if not storage.set_trial_state_values(tid, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        lost += 1
        adapter.retry(study, storage.get_trial(tid))
    return lost
