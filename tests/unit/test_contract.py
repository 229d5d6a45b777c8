"""contract.py: one TrialRecord, the same through result.json, the study and a W&B summary."""
from __future__ import annotations

import json
import math

from dendrisweep.contract import RESULT_METRICS, DataInfo, Status, TrialRecord, is_number

FULL = TrialRecord(
    run_id="abc12345", status="finished", config={"epochs": 4, "dendrites": True, "improvement_threshold": [0.01, 0]},
    best_val_acc=0.9, test_acc=0.85, val_loss=0.3, test_loss=0.4, params=3012, inference_params=2900, macs=41000,
    dendrites_added=1, epochs_run=4, best_epoch=3, stop_reason="PAI finished", wall_seconds=12.5, train_seconds=11.0,
    compute_seconds=9.0, trial_dir="/runs/s/trials/trial-abc12345", device="cpu", device_name="x86_64",
    data=DataInfo(source="built-in", digest="d1", classes=4, sample_shape=[650], train=1200, val=300, test=120),
    versions={"torch": "2.14.1"})


def test_a_record_survives_a_json_round_trip() -> None:
    text = json.dumps(FULL.to_json())
    assert TrialRecord.from_json(json.loads(text)) == FULL


def test_result_json_is_flat_and_leaves_unset_fields_out() -> None:
    raw = TrialRecord(run_id="r", status="failed", reason="boom").to_json()
    assert raw == {"run_id": "r", "status": "failed", "reason": "boom", "config": {}, "stop_reason": ""}
    assert FULL.to_json()["data"]["digest"] == "d1" and FULL.to_json()["best_val_acc"] == 0.9


def test_another_programs_keys_are_kept_beside_the_known_ones() -> None:
    record = TrialRecord.from_json({"status": "finished", "loss": 0.25, "cuda_visible_devices": "1", "_runtime": 3})
    assert record.extra == {"loss": 0.25, "cuda_visible_devices": "1"}  # W&B's own _keys are not the program's
    assert record.value("loss") == 0.25 and record.to_json()["loss"] == 0.25


def test_the_wandb_summary_is_the_record_flattened_and_reads_back() -> None:
    summary = FULL.summary()
    assert "config" not in summary and "versions" not in summary and "data" not in summary
    assert summary["data_digest"] == "d1" and summary["data_source"] == "built-in" and summary["test_acc"] == 0.85
    back = TrialRecord.from_json({**summary, "config": FULL.config})
    assert back.data.digest == "d1" and back.data.source == "built-in" and back.best_val_acc == 0.9
    assert back.extra == {}


def test_value_is_a_finite_number_or_none() -> None:
    record = TrialRecord(best_val_acc=0.5, test_acc=math.nan, extra={"loss": "low", "ok": True})
    assert record.value("best_val_acc") == 0.5
    assert record.value("test_acc") is None and record.value("loss") is None and record.value("ok") is None
    assert record.value("missing") is None and record.value(None) is None


def test_the_metrics_are_the_records_metric_fields() -> None:
    assert RESULT_METRICS[:2] == ("best_val_acc", "test_acc")
    assert {"params", "macs", "dendrites_added", "epochs_run", "inference_params"} <= set(RESULT_METRICS)
    assert "wall_seconds" not in RESULT_METRICS and "status" not in RESULT_METRICS


def test_is_number_excludes_bools_and_non_finite_values() -> None:
    assert is_number(1) and is_number(0.5)
    assert not any(is_number(v) for v in (True, math.inf, math.nan, "1", None))


def test_statuses_are_one_enum_whose_members_are_their_text() -> None:
    assert Status.FINISHED == "finished" and f"{Status.LOST}" == "lost"
    assert json.dumps({"status": Status.PREEMPTED}) == '{"status": "preempted"}'
    assert type(TrialRecord(status=Status.LOST).summary()["status"]) is str  # W&B writes an Enum by its name
    assert TrialRecord.from_json({"status": "diverged"}).status is Status.DIVERGED
    assert TrialRecord.from_json({"status": "its own word"}).status == "its own word"  # another program's, kept
