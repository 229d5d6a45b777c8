"""Hundreds of trials into one pandas DataFrame: one row per trial, the same columns whatever the source.

Every source holds the same TrialRecord of each trial, and `row` flattens it, once: the local Optuna
study agent.py keeps (any storage URL; the record the agent stored), W&B offline run folders (read
straight from their run files, no server: the record as the run's summary) and a W&B sweep in the
cloud (read with W&B's public API, cached as parquet while the sweep is unchanged). Columns: the
META columns below, then every registry setting (another program's sweep: its own parameters).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dendrisweep import (
    FAILED,
    FINISHED,
    HISTORY_FILE,
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
_INTEGERS = ("trial", "params", "inference_params", "macs", "dendrites_added", "epochs_run", "best_epoch",
             "tflite_int8_bytes", "arena_bytes")
_FLOATS = ("objective", "best_val_acc", "test_acc", "val_loss", "test_loss", "wall_seconds", "agent_seconds",
           "tflite_int8_latency_ms", "tflite_int8_acc")


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
_SWEEP_DONE = {"FINISHED", "CANCELED", "CRASHED", "FAILED"}  # W&B sweep states that take no more runs
RUNS_PER_PAGE = 10  # W&B's own Sweep.runs page size: larger pages of full runs time out on big sweeps (#1894, #1907)


def from_wandb_records(records: Iterable[Mapping[str, Any]], metric: str = "best_val_acc") -> pd.DataFrame:
    """Rows from W&B API run records: {id, state, config, summary} (the shape `wandb.Api().runs` gives).
    A run W&B listed twice (its pages shift while a sweep runs, wandb#6614) is one row: its last listing."""
    unique = {run.get("id"): run for run in records}
    rows = []
    for run in unique.values():
        config = {k: (v.get("value") if isinstance(v, dict) and "value" in v else v)
                  for k, v in (run.get("config") or {}).items() if not k.startswith("_")}
        summary = dict(run.get("summary") or {})
        record = TrialRecord.from_json({**summary, "run_id": run.get("id"), "config": config})
        state = summary.get("status") or _WANDB_STATES.get(run.get("state", ""), run.get("state"))
        rows.append(row(record, state=str(state), objective=record.value(metric), source="wandb"))
    return frame(rows)


def _write_cache(df: pd.DataFrame, cache: Path, key: Mapping[str, Any] | None = None) -> None:
    """Parquet, with mixed-type columns (lists, bools next to NA) stored as JSON text, and the sweep's key."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    encoded = df.copy()
    mixed = [str(c) for c in encoded.columns if pd.api.types.is_object_dtype(encoded[c])]
    for column in mixed:
        encoded[column] = encoded[column].map(lambda v: json.dumps(None if v is pd.NA else v))
    encoded.attrs = {"json_columns": mixed, "key": dict(key or {})}  # pandas keeps attrs in the parquet metadata
    partial = cache.with_suffix(".partial")
    encoded.to_parquet(partial)
    partial.replace(cache)  # a reader never sees half a cache


def _read_cache(cache: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    df = pd.read_parquet(cache)
    for column in df.attrs.get("json_columns", []):
        df[column] = df[column].map(json.loads).astype(object)
    key = df.attrs.get("key") or {}
    df.attrs = {}
    return df, key


def sweep_path(path: str) -> tuple[str, str, str]:
    """ENTITY/PROJECT/SWEEP_ID (a sweep's URL path works too: .../sweeps/ID)."""
    parts = [p for p in path.strip("/").split("/") if p != "sweeps"]
    if len(parts) != 3 or not all(parts):
        raise UsageError(f"W&B sweep {path!r}: expected ENTITY/PROJECT/SWEEP_ID")
    return parts[0], parts[1], parts[2]


@contextmanager
def _wandb_errors(path: str) -> Iterator[None]:
    """W&B's refusals and network failures as one line (its message names the host, never the key)."""
    import wandb

    try:
        yield
    except wandb.errors.Error as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise UsageError(f"W&B could not read sweep {path}: {first}") from None


def from_wandb_sweep(path: str, cache_dir: Path, metric: str | None = None,
                     timeout: int = 60) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, the sweep: config, metric, maximize, state, ...) of ENTITY/PROJECT/SWEEP_ID, read with W&B's
    public API. The objective is the sweep's own metric (or `metric`). A sweep that may still change is
    read again on every call; an ended one once: its cache under `cache_dir` is used while W&B reports the
    same state, last update and run count (one request) and the metric is the same."""
    import wandb

    entity, project, sweep_id = sweep_path(path)
    cache = cache_dir / f"{entity}_{project}_{sweep_id}.parquet"
    api = _api(path, timeout)
    with _wandb_errors(path):
        try:
            sweep = api.sweep(f"{entity}/{project}/{sweep_id}")
        except wandb.errors.CommError as error:
            if isinstance(error.exc, ValueError):  # the public API's "Could not find sweep": no such sweep
                raise UsageError(f"W&B sweep {path} not found (or not visible to this W&B login)") from None
            raise
        config = sweep.config or {}
        metric, maximize = sweep_metric(config, metric)
        key = {"sweep": config, "metric": metric, "maximize": maximize, "state": sweep.state,
               "updated_at": getattr(sweep, "updated_at", None), "run_count": getattr(sweep, "run_count", None)}
        if cache.is_file():
            df, cached = _read_cache(cache)
            if cached == key and key["state"] in _SWEEP_DONE:
                return df, key
        runs = api.runs(f"{entity}/{project}", filters={"$and": [{"sweep": sweep_id}]}, order="+created_at",
                        per_page=RUNS_PER_PAGE, lazy=False)
        records = [{"id": r.id, "state": r.state, "config": dict(r.config), "summary": dict(r.summary)} for r in runs]
    _write_cache(from_wandb_records(records, key["metric"]), cache, key)
    return _read_cache(cache)


# --- any source by one name (the notebook's) ---------------------------------------------------

@dataclass(frozen=True)
class Trials:
    """A sweep's trials, and the metric its sweep optimised."""

    name: str
    df: pd.DataFrame
    metric: str
    maximize: bool
    wandb_sweep: str | None = None  # ENTITY/PROJECT/ID when the trials came from W&B's cloud


def sweep_metric(config: Mapping[str, Any], metric: str | None = None) -> tuple[str, bool]:
    """(name, maximise) of the metric a sweep is analysed on: `metric` when given, else its `metric:`, else the
    first of its `metrics:` (a multi-objective sweep), else best_val_acc; the goal the config declares for
    that name (W&B's default, minimise, when it names none), maximise for a name it does not declare."""
    declared = [m for m in [config.get("metric"), *(config.get("metrics") or [])] if isinstance(m, Mapping)]
    name = metric or next((m["name"] for m in declared if "name" in m), "best_val_acc")
    goal = next((m.get("goal", "minimize") for m in declared if m.get("name") == name), "maximize")
    return name, goal == "maximize"


def open_source(name: str, runs_dir: Path = Path("runs")) -> Trials:
    """Trials by one name: agent.py's study folder (holding study.db) or a sweep YAML (its study in
    `runs_dir`), a storage URL with `#STUDY`, a folder of W&B offline runs, or a W&B sweep
    ENTITY/PROJECT/ID (cached in `runs_dir`/wandb-sweeps)."""
    from dendrisweep.sweep import default_storage_url, load_sweep

    if "://" in name:
        url, _, study = name.rpartition("#")
        if not url or not study:
            raise UsageError(f"{name}: a storage URL names its study after #, e.g. postgresql://host/db#kws")
        df, attrs = read_study(url, study)
        return Trials(study, df, *sweep_metric(attrs.get("sweep") or {}))
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        path = runs_dir / load_sweep(path).name
    if (path / "study.db").is_file():
        df, attrs = read_study(default_storage_url(path), path.name)
        return Trials(path.name, df, *sweep_metric(attrs.get("sweep") or {}))
    if path.is_dir():  # W&B offline runs; agent.py's study beside them knows the sweep's metric
        beside = path.parent
        if (beside / "study.db").is_file():
            metric, maximize = sweep_metric(read_study(default_storage_url(beside), beside.name)[1].get("sweep") or {})
            return Trials(beside.name, from_offline_runs(path, metric), metric, maximize)
        return Trials(path.name, from_offline_runs(path), "best_val_acc", True)
    df, sweep = from_wandb_sweep(name, runs_dir / "wandb-sweeps")
    return Trials(sweep_path(name)[2], df, sweep["metric"], sweep["maximize"], name)


def learning_curves(df: pd.DataFrame, run_ids: Iterable[str], key: str = "val/acc",
                    wandb_sweep: str | None = None) -> dict[str, pd.Series]:
    """`key` per epoch of some runs: from each trial's own history.jsonl where this machine has it, else
    from W&B's sampled history of the run (two requests a run). A run with neither is left out."""
    curves: dict[str, pd.Series] = {}
    rows = df.set_index("run_id")
    api = None  # one W&B client for all the runs it is asked about (each client start costs requests)
    for run_id in run_ids:
        history = Path(str(rows.at[run_id, "run_dir"])) / HISTORY_FILE if run_id in rows.index else None
        if history is not None and history.is_file():
            lines = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
        elif wandb_sweep is not None:
            api = api or _api(wandb_sweep)
            lines = _wandb_history(api, wandb_sweep, run_id, key)
        else:
            continue
        points = [(line.get("epoch", i + 1), line[key]) for i, line in enumerate(lines) if line.get(key) is not None]
        if points:
            curves[run_id] = pd.Series(dict(points), name=key)
    return curves


def download_model(sweep: str, run_id: str, into: Path) -> Path | None:
    """The run's best model from W&B (its `log_model` artifact model-<run id>:best: best_model.pt and
    result.json) downloaded into `into`; None when the run logged none."""
    import wandb

    entity, project, _ = sweep_path(sweep)
    api = _api(sweep)
    with _wandb_errors(sweep):
        try:
            artifact = api.artifact(f"{entity}/{project}/model-{run_id}:best", type="model")
        except wandb.errors.CommError as error:
            if isinstance(error.exc, ValueError):  # "artifact membership ... not found": no model logged
                return None
            raise
        return Path(artifact.download(root=str(into)))


def _api(sweep: str, timeout: int = 60) -> Any:
    """W&B's public API client (its start verifies the credentials: one line when it cannot)."""
    import wandb

    with _wandb_errors(sweep):
        return wandb.Api(timeout=timeout)


def _wandb_history(api: Any, sweep: str, run_id: str, key: str) -> list[dict[str, Any]]:
    entity, project, _ = sweep_path(sweep)
    with _wandb_errors(sweep):
        run = api.run(f"{entity}/{project}/{run_id}")
        return list(run.history(keys=[key], x_axis="epoch", pandas=False))
