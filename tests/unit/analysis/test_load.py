"""analysis/load.py: any source's records flattened once into the same frame."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.load import (
    COLUMNS,
    DTYPES,
    META,
    _read_cache,
    _write_cache,
    frame,
    from_wandb_records,
    row,
    sweep_path,
)
from dendrisweep import UsageError
from dendrisweep.contract import RESULT_METRICS, DataInfo, TrialRecord
from dendrisweep.settings import SETTINGS

RECORD = TrialRecord(run_id="r1", status="finished", config={"learning_rate": 0.003, "dendrites": True},
                     best_val_acc=0.9, test_acc=0.85, params=3012, macs=40000, dendrites_added=1, epochs_run=7,
                     wall_seconds=10.0, agent_seconds=11.5, trial_dir="/t",
                     data=DataInfo(source="built-in", digest="d"))


def test_a_record_is_one_row_with_every_column() -> None:
    df = frame([row(RECORD, state="finished", objective=0.9, source="optuna", trial=3)])
    assert list(df.columns) == COLUMNS and set(RESULT_METRICS) <= set(META)
    first = df.iloc[0]
    assert (first["trial"], first["run_id"], first["state"], first["objective"]) == (3, "r1", "finished", 0.9)
    assert (first["wall_seconds"], first["agent_seconds"]) == (10.0, 11.5)  # one meaning each
    assert (first["data_digest"], first["run_dir"], first["learning_rate"]) == ("d", "/t", 0.003)
    assert pd.isna(first["width_multiplier"])  # a setting the record does not hold


def test_column_dtypes_follow_the_records_fields_and_the_settings_kinds() -> None:
    df = frame([row(RECORD, state="finished", objective=0.9, source="optuna", trial=3),
                row(TrialRecord(run_id="r2", status="failed"), state="failed", objective=None, source="optuna")])
    integers = ["trial", "params", "inference_params", "macs", "dendrites_added", "epochs_run", "best_epoch",
                "tflite_int8_bytes", "arena_bytes"]
    floats = ["objective", "best_val_acc", "test_acc", "val_loss", "test_loss", "wall_seconds", "agent_seconds",
              "tflite_int8_latency_ms", "tflite_int8_acc"]
    assert {c for c in META if DTYPES.get(c) == "Int64"} == set(integers)
    assert {c for c in META if DTYPES.get(c) == "float64"} == set(floats)
    assert all(str(df[c].dtype) == "Int64" for c in integers) and all(df[c].dtype == float for c in floats)
    for name, setting in SETTINGS.items():  # a numeric registry setting's column: its kind's dtype
        if setting.kind in ("int", "float"):
            assert str(df[name].dtype) == {"int": "Int64", "float": "float64"}[setting.kind], name
    assert df["learning_rate"].iloc[0] == 0.003 and pd.isna(df["params"].iloc[1])


def test_another_programs_nested_parameters_become_dotted_columns() -> None:
    record = TrialRecord(run_id="r", status="finished", config={"optimizer": {"lr": 0.1, "name": "adam"}, "layers": 2})
    df = frame([row(record, state="finished", objective=0.1, source="wandb")])
    assert list(df.columns) == [*META, "layers", "optimizer.lr", "optimizer.name"]  # its own, no registry settings
    assert not set(SETTINGS) & set(df.columns)


def test_wandb_cloud_records_map_to_the_frame_and_cache_round_trips(tmp_path: Path) -> None:
    # The shape wandb.Api().runs(...) records give: W&B config (with its _wandb key) and summary.
    records = [
        {"id": "a1", "state": "finished",
         "config": {"_wandb": {"value": {"cli_version": "0.31.0"}}, "learning_rate": 0.003, "dendrites": True,
                    "improvement_threshold": [0.001, 0.0]},
         "summary": {"status": "finished", "best_val_acc": 0.91, "params": 3140, "dendrites_added": 1, "epochs_run": 12,
                     "_runtime": 30, "data_digest": "abc"}},
        {"id": "b2", "state": "crashed", "config": {"learning_rate": 0.01, "dendrites": False}, "summary": {}},
    ]
    df = from_wandb_records([*records, records[0]])  # listed twice by W&B's paging (wandb#6614): one row
    assert list(df.columns) == COLUMNS and len(df) == 2
    assert df["state"].tolist() == ["finished", "failed"] and df["objective"].iloc[0] == 0.91
    assert df["dendrites_added"].iloc[0] == 1 and df["dendrites"].tolist() == [True, False]
    assert df["improvement_threshold"].iloc[0] == [0.001, 0.0]
    _write_cache(df, tmp_path / "cache.parquet", {"sweep": {"metric": {"name": "best_val_acc"}}, "state": "FINISHED"})
    again, key = _read_cache(tmp_path / "cache.parquet")
    assert key == {"sweep": {"metric": {"name": "best_val_acc"}}, "state": "FINISHED"} and again.attrs == {}
    assert again["improvement_threshold"].iloc[0] == [0.001, 0.0] and again["dendrites"].tolist() == [True, False]
    assert again["objective"].iloc[0] == 0.91 and pd.isna(again["objective"].iloc[1])




def test_a_sweep_path_is_entity_project_id_or_its_url_path() -> None:
    assert sweep_path("team/proj/ab12cd") == sweep_path("/team/proj/sweeps/ab12cd/") == ("team", "proj", "ab12cd")
    for bad in ("proj/ab12cd", "team//ab12cd", "a/b/c/d"):
        with pytest.raises(UsageError, match="expected ENTITY/PROJECT/SWEEP_ID"):
            sweep_path(bad)
