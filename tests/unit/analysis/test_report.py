"""analysis/report.py: what the report says, on frames made from records."""
from __future__ import annotations

from analysis.load import frame, row
from analysis.report import build_sections
from dendrisweep.contract import TrialRecord


def trials(*stops: str) -> list[dict[str, object]]:
    return [row(TrialRecord(run_id=f"r{i}", status="finished", best_val_acc=0.8 + i / 100, params=1000 + i, macs=10,
                            dendrites_added=1, epochs_run=40, stop_reason=stop, config={"learning_rate": 0.01}),
                state="finished", objective=0.8 + i / 100, source="optuna", trial=i)
            for i, stop in enumerate(stops)]


def test_trials_the_epoch_cap_stopped_are_flagged() -> None:
    sections = build_sections(frame(trials("PAI finished", "epoch cap", "epoch cap")), "best_val_acc", True)
    (capped,) = [s for s in sections if "epoch cap" in s.title]
    assert capped.title == "2 trials stopped by the epoch cap before training was complete"
    assert capped.table is not None and capped.table["run_id"].tolist() == ["r1", "r2"]
    assert "--include-capped" in capped.text[0]


def test_no_capped_trial_no_section() -> None:
    sections = build_sections(frame(trials("PAI finished", "converged (PAI's stopping rule)")), "best_val_acc", True)
    assert not [s for s in sections if "epoch cap" in s.title]
