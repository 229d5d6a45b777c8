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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

import pandas as pd

from dendrisweep import (
    HISTORY_FILE,
    RESULT_METRICS,
    SETTINGS,
    TrialRecord,
    UsageError,
    find_run_files,
    read_run_file,
)
from dendrisweep.sweep import (
    SweepSpec,
    default_storage_url,
    load_sweep,
    offline_state,
    parse_sweep,
    read_trials,
    runs_our_program,
    stored_record,
    study_status,
    wandb_status,
)

META = ["trial", "run_id", "state", "reason", "objective", *RESULT_METRICS, "best_epoch", "stop_reason",
        "wall_seconds", "agent_seconds", "data_source", "data_digest", "run_dir", "source"]
COLUMNS = META + list(SETTINGS)


def _dtypes() -> dict[str, str]:
    """Each numeric column's pandas dtype, from its TrialRecord field's type (integers nullable: Int64) or its
    registry setting's kind; `trial` is Optuna's number."""
    kinds = {int | None: "Int64", float | None: "float64"}
    hints = get_type_hints(TrialRecord)
    record = {f.name: kinds[hints[f.name]] for f in fields(TrialRecord) if f.name in META and hints[f.name] in kinds}
    settings = {name: {"int": "Int64", "float": "float64"}[s.kind] for name, s in SETTINGS.items()
                if s.kind in ("int", "float")}
    return {"trial": "Int64", **record, **settings}


DTYPES = _dtypes()


def row(record: TrialRecord, *, state: str, objective: Any, source: str, trial: int | None = None) -> dict[str, Any]:
    """A trial's record as a frame row: its config as columns (nested parameters dotted), its numbers."""
    return {**_flat(record.config), **{key: getattr(record, key) for key in RESULT_METRICS},
            "trial": trial, "run_id": record.run_id, "state": str(state), "reason": record.reason,
            "objective": objective,
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
    for column in columns:
        if column in DTYPES:
            df[column] = pd.to_numeric(df[column], errors="coerce").astype(DTYPES[column])
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

def _ours(sweep: Mapping[str, Any]) -> bool | None:
    """Whether the study's sweep ran train_trial.py (None: a study without its sweep recorded)."""
    return runs_our_program(sweep.get("program"), sweep.get("command", [])) if sweep else None


def read_study(storage_url: str, study_name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(frame, study user attributes) of an agent.py study, from the store alone (800 trials: ~0.4 s)."""
    attrs, trials = read_trials(storage_url, study_name)
    rows = []
    for trial in trials:
        stored = stored_record(trial)
        state = study_status(trial.state, stored.status if stored else None)
        rows.append(row(stored or TrialRecord(), state=state, objective=trial.value, source="optuna",
                        trial=trial.number))
    return frame(rows, _ours(attrs.get("sweep") or {})), attrs


# --- W&B offline run folders -------------------------------------------------------------------

def from_offline_runs(folder: str | Path, metric: str = "best_val_acc") -> pd.DataFrame:
    """Every `offline-run-*` under a W&B folder (or the folder holding `wandb/`), read without a server."""
    files = find_run_files(folder)
    if not files:
        raise UsageError(f"no W&B offline runs (offline-run-*/run-*.wandb) under {folder}")
    rows = []
    for run in map(read_run_file, files):
        record = TrialRecord.from_json({**run.summary, "run_id": run.run_id, "config": run.config})
        state = wandb_status(offline_state(run.exit_code), run.summary.get("status"))
        rows.append(row(record, state=state, objective=record.value(metric), source="wandb-offline"))
    return frame(rows)


# --- a W&B sweep in the cloud ------------------------------------------------------------------

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
        state = wandb_status(str(run.get("state", "")), summary.get("status"))
        rows.append(row(record, state=state, objective=record.value(metric), source="wandb"))
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


# --- any source: one type, one resolver ----------------------------------------------------------

@dataclass(frozen=True)
class Trials:
    """A sweep's trials, the metric its sweep optimised, and what re-runs them."""

    name: str
    df: pd.DataFrame
    metric: str
    maximize: bool
    spec: SweepSpec | None = None  # the sweep that made a study (None: W&B runs)
    storage: str | None = None  # the study's storage URL
    wandb_config: dict[str, Any] | None = None  # a W&B sweep's own config (the verdict re-runs its program)
    wandb_sweep: str | None = None  # ENTITY/PROJECT/ID when the trials came from W&B's cloud


def sweep_metric(config: Mapping[str, Any], metric: str | None = None) -> tuple[str, bool]:
    """(name, maximise) of the metric a sweep is analysed on: `metric` when given, else its `metric:`, else the
    first of its `metrics:` (a multi-objective sweep), else best_val_acc; the goal the config declares for
    that name (W&B's default, minimise, when it names none), maximise for a name it does not declare."""
    declared = [m for m in [config.get("metric"), *(config.get("metrics") or [])] if isinstance(m, Mapping)]
    name = metric or next((m["name"] for m in declared if "name" in m), "best_val_acc")
    goal = next((m.get("goal", "minimize") for m in declared if m.get("name") == name), "maximize")
    return name, goal == "maximize"


def study_trials(storage: str, study_name: str, spec: SweepSpec | None = None) -> Trials:
    """An agent.py study in any Optuna storage, analysed on its sweep's own metric."""
    df, attrs = read_study(storage, study_name)
    raw = attrs.get("sweep") or {}
    if spec is None and raw:
        spec = parse_sweep(raw, Path(attrs.get("sweep_file") or f"{study_name}.yaml"))
    return Trials(study_name, df, *sweep_metric(raw), spec, storage)


def sweep_trials(sweep: Path, runs_dir: Path) -> Trials:
    """The study agent.py made for a sweep YAML, in `runs_dir`."""
    spec = load_sweep(sweep)
    database = runs_dir / spec.name / "study.db"
    if not database.is_file():
        raise UsageError(f"no study for {sweep} at {database}; run `python agent.py {sweep}` first")
    return study_trials(default_storage_url(runs_dir / spec.name), spec.name, spec)


def offline_trials(folder: Path, metric: str | None = None, maximize: bool | None = None) -> Trials:
    """A folder of W&B offline runs, named after the folder holding it: on `metric` (default: the sweep's
    own when agent.py's study sits beside the folder, else best_val_acc) and its goal (`maximize`: default
    the sweep's goal for that metric, else maximise)."""
    beside = folder.resolve().parent
    sweep: Mapping[str, Any] = {}
    if (metric is None or maximize is None) and (beside / "study.db").is_file():
        sweep = read_study(default_storage_url(beside), beside.name)[1].get("sweep") or {}
    metric, declared = sweep_metric(sweep, metric)
    return Trials(beside.name, from_offline_runs(folder, metric), metric, declared if maximize is None else maximize)


def wandb_sweep_trials(path: str, runs_dir: Path, metric: str | None = None, maximize: bool | None = None) -> Trials:
    """A W&B sweep ENTITY/PROJECT/ID in the cloud (cached under `runs_dir`/wandb-sweeps), on its own metric and
    goal unless `metric` or `maximize` is given."""
    df, sweep = from_wandb_sweep(path, runs_dir / "wandb-sweeps", metric)
    return Trials(sweep_path(path)[2], df, sweep["metric"], sweep["maximize"] if maximize is None else maximize,
                  wandb_config=sweep["sweep"], wandb_sweep=path)


def open_source(name: str | Path, runs_dir: Path = Path("runs")) -> Trials:
    """Trials by one name: agent.py's study folder (holding study.db) or a sweep YAML (its study in
    `runs_dir`), a storage URL with `#STUDY`, a folder of W&B offline runs, or a W&B sweep
    ENTITY/PROJECT/ID (cached in `runs_dir`/wandb-sweeps)."""
    text = str(name)
    if "://" in text:
        url, _, study = text.rpartition("#")
        if not url or not study:
            raise UsageError(f"{text}: a storage URL names its study after #, e.g. postgresql://host/db#kws")
        return study_trials(url, study)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return sweep_trials(path, runs_dir)
    if (path / "study.db").is_file():
        return study_trials(default_storage_url(path), path.name)
    if path.is_dir():
        return offline_trials(path)
    return wandb_sweep_trials(text, runs_dir)


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
