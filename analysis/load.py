"""Hundreds of trials into one pandas DataFrame: one row per trial, the same columns whatever the source.

Every source holds the same TrialRecord of each trial, and `row` flattens it, once: the local Optuna
study agent.py keeps (any storage URL; the record the agent stored), W&B offline run folders (read
straight from their run files, no server: the record as the run's summary) and a W&B sweep in the
cloud (fetched once, then cached as parquet). Columns: the META columns below, then every registry
setting (another program's sweep: its own parameters).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dendrisweep import (
    FAILED,
    FINISHED,
    KILLED,
    PRUNED,
    QUEUED,
    RESULT_METRICS,
    RUNNING,
    SETTINGS,
    OfflineRun,
    TrialRecord,
    UsageError,
    find_run_files,
    read_run_file,
)
from dendrisweep.sweep import read_trials, runs_our_program, stored_record

META = ["trial", "run_id", "state", "reason", "objective", *RESULT_METRICS, "best_epoch", "stop_reason",
        "wall_seconds", "agent_seconds", "data_source", "data_digest", "run_dir", "source"]
COLUMNS = META + list(SETTINGS)
_INTEGERS = ("trial", "params", "inference_params", "macs", "dendrites_added", "epochs_run", "best_epoch")
_FLOATS = ("objective", "best_val_acc", "test_acc", "val_loss", "test_loss", "wall_seconds", "agent_seconds")


def row(record: TrialRecord, *, state: str, objective: Any, source: str, trial: int | None = None) -> dict[str, Any]:
    """A trial's record as a frame row: its config as columns (nested parameters dotted), its numbers."""
    return {**_flat(record.config), **{key: getattr(record, key) for key in RESULT_METRICS},
            "trial": trial, "run_id": record.run_id, "state": state, "reason": record.reason, "objective": objective,
            "best_epoch": record.best_epoch, "stop_reason": record.stop_reason, "wall_seconds": record.wall_seconds,
            "agent_seconds": record.agent_seconds, "data_source": record.data.source,
            "data_digest": record.data.digest, "run_dir": record.trial_dir, "source": source}


def frame(rows: Iterable[Mapping[str, Any]], ours: bool | None = None) -> pd.DataFrame:
    """Rows (dicts) to the standard frame, missing keys NA: the META columns, then the parameters. For
    train_trial.py (`ours`; by default: any registry setting among the keys, or no parameter at all)
    those are every registry setting (COLUMNS); a sweep of another program has its own (nested ones
    as `optimizer.lr`)."""
    rows = list(rows)
    keys = {key for r in rows for key in r if key not in META}
    if ours is None:
        ours = not keys or bool(keys & set(SETTINGS))
    settings = list(SETTINGS) if ours else []
    columns = META + settings + sorted(keys - set(settings))
    df = pd.DataFrame.from_records(rows, columns=columns)
    for column in _INTEGERS:
        df[column] = pd.to_numeric(df[column], errors="coerce").astype("Int64")
    for column in _FLOATS:
        df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
    return df


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested parameters (W&B's `parameters:` inside a parameter) as dotted columns: optimizer.lr."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value and key not in SETTINGS:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- the local Optuna study ------------------------------------------------------------------

_OPTUNA_STATES = {"COMPLETE": FINISHED, "PRUNED": PRUNED, "FAIL": FAILED, "RUNNING": RUNNING, "WAITING": QUEUED}


def _ours(sweep: Mapping[str, Any]) -> bool | None:
    """Whether the study's sweep ran train_trial.py (None: a study without its sweep recorded)."""
    return runs_our_program(sweep.get("program"), sweep.get("command", [])) if sweep else None


def read_study(storage_url: str, study_name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, study user attributes) of an agent.py study, from the store alone (800 trials: ~0.4 s)."""
    attrs, trials = read_trials(storage_url, study_name)
    rows = []
    for trial in trials:
        record = stored_record(trial) or TrialRecord()
        # A trial not yet ended is running or queued whatever record it carries (a retry inherits its
        # lost trial's); an ended one is what the agent settled it as.
        ended = trial.state not in ("RUNNING", "WAITING") and record.status != RUNNING
        state = record.status if ended else _OPTUNA_STATES.get(trial.state, FAILED)
        rows.append(row(record, state=state, objective=trial.value, source="optuna", trial=trial.number))
    return frame(rows, _ours(attrs.get("sweep") or {})), attrs


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
        record = TrialRecord.from_json({**run.summary, "run_id": run.run_id, "config": run.config})
        rows.append(row(record, state=_offline_state(run), objective=record.value(metric), source="wandb-offline"))
    return frame(rows)


# --- a W&B sweep in the cloud ------------------------------------------------------------------

_WANDB_STATES = {"finished": FINISHED, "failed": FAILED, "crashed": FAILED, "killed": KILLED, "running": RUNNING,
                 "pending": QUEUED}  # W&B's run states -> ours


def from_wandb_records(records: Iterable[Mapping[str, Any]], metric: str = "best_val_acc") -> pd.DataFrame:
    """Rows from W&B API run records: {id, state, config, summary} (the shape `wandb.Api().runs` gives)."""
    rows = []
    for run in records:
        config = {k: (v.get("value") if isinstance(v, dict) and "value" in v else v)
                  for k, v in (run.get("config") or {}).items() if not k.startswith("_")}
        summary = dict(run.get("summary") or {})
        record = TrialRecord.from_json({**summary, "run_id": run.get("id"), "config": config})
        state = summary.get("status") or _WANDB_STATES.get(run.get("state", ""), run.get("state"))
        rows.append(row(record, state=str(state), objective=record.value(metric), source="wandb"))
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
