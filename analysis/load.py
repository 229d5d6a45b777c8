"""Hundreds of trials into one pandas DataFrame: one row per trial, the same columns whatever the source.

Sources: the local Optuna study agent.py keeps (any storage URL), W&B offline run folders (read
straight from their run files, no server), and a W&B sweep in the cloud (fetched once, then cached
as parquet). Columns: the META columns below, then every registry setting.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dendrisweep.contract import FAILED, FINISHED, KILLED, PRUNED, QUEUED, RESULT_METRICS, RUNNING
from dendrisweep.errors import UsageError
from dendrisweep.settings import SETTINGS
from dendrisweep.sweep.storage import quiet_optuna, redact
from dendrisweep.wandb_files import OfflineRun, find_run_files, read_run_file

META = ["trial", "run_id", "state", "reason", "objective", "best_val_acc", "test_acc", "val_loss", "params", "macs",
        "dendrites_added", "epochs_run", "wall_seconds", "data_source", "data_digest", "run_dir", "source"]
COLUMNS = META + list(SETTINGS)
_INTEGERS = ("trial", "params", "macs", "dendrites_added", "epochs_run")
# result/summary keys that are frame columns under the same name
_METRICS = tuple(m for m in RESULT_METRICS if m != "test_loss")


def frame(rows: Iterable[Mapping[str, Any]], ours: bool | None = None) -> pd.DataFrame:
    """Rows (dicts) to the standard frame, missing keys NA: the META columns, then the parameters. For
    train_trial.py (`ours`; by default: any registry setting among the keys, or no parameter at all)
    those are every registry setting (COLUMNS); a sweep of another program has its own (nested ones
    as `optimizer.lr`)."""
    rows = list(rows)
    keys = {key for row in rows for key in row if key not in META}
    if ours is None:
        ours = not keys or bool(keys & set(SETTINGS))
    settings = list(SETTINGS) if ours else []
    columns = META + settings + sorted(keys - set(settings))
    df = pd.DataFrame.from_records(rows, columns=columns)
    for column in _INTEGERS:
        df[column] = pd.to_numeric(df[column], errors="coerce").astype("Int64")
    for column in ("objective", "best_val_acc", "test_acc", "val_loss", "wall_seconds"):
        df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
    return df


def _number(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)) else None


# --- the local Optuna study ------------------------------------------------------------------

_OPTUNA_STATES = {"COMPLETE": FINISHED, "PRUNED": PRUNED, "RUNNING": RUNNING, "WAITING": QUEUED}


def _trial_row(number: int, state: str, value: float | None, params: Mapping[str, Any],
               attrs: Mapping[str, Any], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """One study trial as a frame row (the agent stores everything the row needs on the trial)."""
    from dendrisweep.sweep.space import decode

    config = _flat(attrs.get("config") or {**fixed, **{k: decode(v) for k, v in params.items()}})
    data = attrs.get("data") or {}
    return {**config, **{key: attrs.get(key) for key in _METRICS},
            "trial": number, "run_id": attrs.get("run_id"),
            "state": FAILED if attrs.get("imputed") else _OPTUNA_STATES.get(state) or attrs.get("status", FAILED),
            "reason": attrs.get("reason", ""), "objective": value,
            "wall_seconds": attrs.get("agent_seconds", attrs.get("wall_seconds")),
            "data_source": data.get("source"), "data_digest": data.get("digest"),
            "run_dir": attrs.get("trial_dir"), "source": "optuna"}


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters (W&B's `parameters:` inside a parameter) as dotted columns: optimizer.lr."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value and key not in SETTINGS:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _ours(sweep: Mapping[str, Any]) -> bool | None:
    """Whether the study's sweep ran train_trial.py (None: a study without its sweep recorded)."""
    from dendrisweep.sweep.spec import runs_our_program

    return runs_our_program(sweep.get("program"), sweep.get("command", [])) if sweep else None


def _fixed(sweep: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v["value"] for k, v in (sweep.get("parameters") or {}).items() if isinstance(v, dict) and "value" in v}


def load_study(storage_url: str, study_name: str) -> Any:
    """Load an Optuna study for reading; a missing study or database is a UsageError."""
    import optuna

    quiet_optuna()
    try:
        return optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:
        raise UsageError(f"no study named {study_name!r} in {redact(storage_url)} (run agent.py first?)") from None
    except Exception as exc:  # noqa: BLE001  bad URL, server down, not a study database
        raise UsageError(f"cannot read {redact(storage_url)} ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def from_study(study: Any) -> pd.DataFrame:
    """Every trial of a study, through Optuna's API (any storage, journal files included)."""
    sweep = study.user_attrs.get("sweep") or {}
    return frame((_trial_row(t.number, t.state.name, t.value, t.params, t.user_attrs, _fixed(sweep))
                  for t in study.get_trials(deepcopy=False)), _ours(sweep))


def read_study(storage_url: str, study_name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, study user attributes) of an agent.py study, from the store alone.

    For SQL storages (SQLite, PostgreSQL, MySQL) the five tables the frame needs are read in five
    queries: Optuna's ORM would also build every intermediate value (40 per trial) and takes ~2.6 s
    for 800 trials, this ~0.3 s. Any other storage goes through Optuna's API.
    """
    backend = storage_url.split("://", 1)[0].split("+")[0] if "://" in storage_url else ""
    if backend not in ("sqlite", "postgresql", "mysql"):
        study = load_study(storage_url, study_name)
        return from_study(study), dict(study.user_attrs)
    if storage_url.startswith("sqlite:///") and not Path(storage_url[len("sqlite:///"):]).is_file():
        raise UsageError(f"cannot read {storage_url} (no such file)")
    try:
        return _read_rdb(storage_url, study_name)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001  server down, driver missing, not an Optuna database
        raise UsageError(f"cannot read {redact(storage_url)} ({_first_line(exc)})") from None


def _read_rdb(url: str, study_name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    import sqlalchemy
    from optuna.distributions import json_to_distribution

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            def rows(sql: str, **params: Any) -> list[Any]:
                return list(conn.execute(sqlalchemy.text(sql), params))

            found = rows("SELECT study_id FROM studies WHERE study_name = :name", name=study_name)
            if not found:
                raise UsageError(f"no study named {study_name!r} in {redact(url)} (run agent.py first?)")
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
    sweep = study_attrs.get("sweep") or {}
    trial_rows = (_trial_row(number, state, values.get(tid), params.get(tid, {}), attrs.get(tid, {}), _fixed(sweep))
                  for tid, number, state in trials)
    return frame(trial_rows, _ours(sweep)), study_attrs


# --- W&B offline run folders -------------------------------------------------------------------

def _offline_state(run: OfflineRun) -> str:
    status = run.summary.get("status")
    if run.exit_code is None:
        return RUNNING if status in (None, RUNNING) else str(status)
    return str(status or (FINISHED if run.exit_code == 0 else FAILED))


def from_offline_runs(folder: str | Path, metric: str = "best_val_acc") -> pd.DataFrame:
    """Every `offline-run-*` under a W&B folder (or the folder holding `wandb/`), read without a server."""
    files = find_run_files(folder)
    if not files:
        raise UsageError(f"no W&B offline runs (offline-run-*/run-*.wandb) under {folder}")
    rows = []
    for run in map(read_run_file, files):
        summary = run.summary
        rows.append({**_flat(run.config), **{key: _number(summary.get(key)) for key in _METRICS},
                     "trial": None, "run_id": run.run_id, "state": _offline_state(run),
                     "reason": summary.get("reason", ""), "objective": _number(summary.get(metric)),
                     "wall_seconds": _number(summary.get("wall_seconds")), "data_source": summary.get("data_source"),
                     "data_digest": summary.get("data_digest"), "run_dir": summary.get("trial_dir"),
                     "source": "wandb-offline"})
    return frame(rows)


# --- a W&B sweep in the cloud ------------------------------------------------------------------

_WANDB_STATES = {"finished": FINISHED, "failed": FAILED, "crashed": FAILED, "killed": KILLED, "running": RUNNING,
                 "pending": QUEUED}  # W&B's run states -> ours


def from_wandb_records(records: Iterable[Mapping[str, Any]], metric: str = "best_val_acc") -> pd.DataFrame:
    """Rows from W&B API run records: {id, state, config, summary} (the shape `wandb.Api().runs` gives)."""
    rows = []
    for record in records:
        config = {k: (v.get("value") if isinstance(v, dict) and "value" in v else v)
                  for k, v in (record.get("config") or {}).items() if not k.startswith("_")}
        summary = record.get("summary") or {}
        state = summary.get("status") or _WANDB_STATES.get(record.get("state", ""), record.get("state"))
        rows.append({**_flat(config), **{key: _number(summary.get(key)) for key in _METRICS},
                     "trial": None, "run_id": record.get("id"), "state": state, "reason": summary.get("reason", ""),
                     "objective": _number(summary.get(metric)), "wall_seconds": _number(summary.get("wall_seconds")),
                     "data_source": summary.get("data_source"), "data_digest": summary.get("data_digest"),
                     "run_dir": summary.get("trial_dir"), "source": "wandb"})
    return frame(rows)


def _write_cache(df: pd.DataFrame, cache: Path) -> None:
    """Parquet, with mixed-type columns (lists, bools next to NA) stored as JSON text."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    encoded = df.copy()
    mixed = [str(c) for c in encoded.columns if pd.api.types.is_object_dtype(encoded[c])]
    for column in mixed:
        encoded[column] = encoded[column].map(lambda v: json.dumps(None if v is pd.NA else v))
    encoded.attrs["json_columns"] = mixed  # pandas keeps attrs in the parquet metadata
    encoded.to_parquet(cache)


def _read_cache(cache: Path) -> pd.DataFrame:
    df = pd.read_parquet(cache)
    for column in df.attrs.pop("json_columns", []):
        df[column] = df[column].map(json.loads).astype(object)
    return df


def from_wandb_sweep(path: str, cache: Path, metric: str = "best_val_acc") -> pd.DataFrame:
    """ENTITY/PROJECT/SWEEP_ID from W&B, all runs in one paged query; a second call reads `cache`."""
    if cache.is_file():
        return _read_cache(cache)
    parts = path.strip("/").split("/")
    if len(parts) != 3:
        raise UsageError(f"W&B sweep path {path!r}: expected ENTITY/PROJECT/SWEEP_ID")
    import wandb

    entity, project, sweep_id = parts
    runs = wandb.Api(timeout=60).runs(f"{entity}/{project}", filters={"sweep": sweep_id}, per_page=500, lazy=False)
    records = [{"id": r.id, "state": r.state, "config": dict(r.config), "summary": dict(r.summary)} for r in runs]
    _write_cache(from_wandb_records(records, metric), cache)
    return _read_cache(cache)
