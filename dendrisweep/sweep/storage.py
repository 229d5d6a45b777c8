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
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from dendrisweep.contract import Status, TrialRecord
from dendrisweep.errors import UsageError
from dendrisweep.sweep import optuna_adapter as adapter

GRPC = "grpc://"
RECORD_ATTR = "record"  # trial user attribute: its TrialRecord, whole (contract.py)


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


def open_storage(url: str) -> adapter.Storage:
    """Open (or create) the study storage: an RDB URL, or `grpc://host:port` (Optuna's storage proxy)."""
    quiet_optuna()
    try:
        if url.startswith(GRPC):
            host, _, port = url[len(GRPC):].rstrip("/").rpartition(":")
            if not host or not port.isdigit():
                raise ValueError("expected grpc://host:port")
            return adapter.grpc_proxy(host, int(port))
        sqlite = _sqlite_path(url)
        if sqlite is not None:
            sqlite.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(url, "schema"):  # agents starting together would race to create the tables
            return adapter.rdb_storage(url, sqlite=sqlite is not None)
    except Exception as exc:  # noqa: BLE001  driver missing, bad URL, server down, unwritable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"storage {redact(url)}: cannot open it ({first})") from None


_process_lock = threading.Lock()


@contextmanager
def exclusive(url: str, name: str, storage: adapter.Storage | None = None) -> Iterator[None]:
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


def stored_record(trial: optuna.trial.FrozenTrial | optuna.trial.Trial | adapter.StoredTrial) -> TrialRecord | None:
    """The record the agent stored on a trial (None: claimed, never launched)."""
    raw = trial.user_attrs.get(RECORD_ATTR)
    return TrialRecord.from_json(raw) if isinstance(raw, dict) else None


def stored_status(trial: optuna.trial.FrozenTrial) -> str | None:
    """The status in a trial's stored record, without building the whole record (the budget counts it
    for every trial at every claim)."""
    raw = trial.user_attrs.get(RECORD_ATTR)
    return raw.get("status") if isinstance(raw, dict) else None


def mark_lost(study: optuna.Study, trial: optuna.trial.FrozenTrial, reason: str) -> bool:
    """Record a running trial as LOST with `reason`, fail it and queue its parameters again; False when
    another agent got there first (or its own agent recorded it meanwhile)."""
    record = stored_record(trial) or TrialRecord()
    lost = TrialRecord.from_json({**record.to_json(), "status": Status.LOST, "reason": reason})
    if not adapter.fail(study, trial, {RECORD_ATTR: lost.to_json()}):
        return False
    adapter.retry(study, adapter.reload(study, trial))
    return True


def fail_lost_trials(study: optuna.Study, grace: float) -> int:
    """Mark trials whose worker stopped heartbeating for over `grace` seconds as LOST (with why), and
    queue them again."""
    reason = (f"worker stopped heartbeating (silent for over {grace:g}s): killed or lost; "
              "its parameters were queued again")
    return sum(mark_lost(study, trial, reason) for trial in adapter.stale_trials(study, grace))


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_study(url: str, study_name: str) -> optuna.Study:
    """An existing study, for reading; a missing study or database is a UsageError."""
    quiet_optuna()
    try:
        return optuna.load_study(study_name=study_name, storage=url)
    except KeyError:
        raise UsageError(f"no study named {study_name!r} in {redact(url)} (run agent.py first?)") from None
    except Exception as exc:  # noqa: BLE001  bad URL, server down, not a study database
        raise UsageError(f"cannot read {redact(url)} ({_first_line(exc)})") from None


def read_trials(url: str, study_name: str) -> tuple[dict[str, Any], list[adapter.StoredTrial]]:
    """(study user attributes, every trial) of a study, read the fastest way its storage allows: SQL
    storages (SQLite, PostgreSQL, MySQL) directly, any other through Optuna's API."""
    backend = url.split("://", 1)[0].split("+")[0] if "://" in url else ""
    if backend not in ("sqlite", "postgresql", "mysql"):
        study = load_study(url, study_name)
        return dict(study.user_attrs), adapter.stored_trials(study)
    sqlite = _sqlite_path(url)
    if sqlite is not None and not sqlite.is_file():
        raise UsageError(f"cannot read {url} (no such file)")
    try:
        found = adapter.read_rdb(url, study_name)
    except Exception as exc:  # noqa: BLE001  server down, driver missing, not an Optuna database
        raise UsageError(f"cannot read {redact(url)} ({_first_line(exc)})") from None
    if found is None:
        raise UsageError(f"no study named {study_name!r} in {redact(url)} (run agent.py first?)")
    return found
