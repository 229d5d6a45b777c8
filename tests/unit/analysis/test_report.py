"""analysis/report.py: what the report says, on frames made from records."""
from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from analysis import plots
from analysis.load import frame, row
from analysis.pareto import BASELINE, COST_LABELS, DENDRITIC, compare_fronts, families
from analysis.report import Section, build_sections
from dendrisweep.contract import TrialRecord
from tests.unit.analysis.test_pareto import trial


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


def deployed(i: int, acc: float, params: int, dendrites: bool) -> dict[str, object]:
    """A trial with the deployment numbers: flash ~ 1.1 bytes a parameter, RAM ~ a fifth of that."""
    return trial(i, acc, params, dendrites, tflite_int8_bytes=int(params * 1.1) + 400, arena_bytes=params // 5 + 64)


STUDY = [deployed(0, 0.90, 3000, True), deployed(1, 0.88, 1200, True), deployed(2, 0.80, 500, True)]
BASE = [deployed(3, 0.89, 5000, False), deployed(4, 0.87, 2500, False), deployed(5, 0.70, 400, False)]


def compression(sections: list[Section]) -> Section:
    (found,) = [s for s in sections if s.title.startswith("Compression")]
    return found


def test_compression_shows_both_fronts_on_flash_and_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Figure] = []
    monkeypatch.setattr(plots, "_png", lambda fig: drawn.append(fig) or b"png")
    section = compression(build_sections(frame(STUDY), "best_val_acc", True, frame(BASE)))
    assert list(section.figures) == ["pareto_tflite_int8_bytes", "pareto_arena_bytes"]
    text = "\n".join(section.text)
    groups = families(frame(STUDY), frame(BASE))
    for cost, figure in zip(("tflite_int8_bytes", "arena_bytes"), drawn[:2], strict=True):
        c = compare_fronts(groups, cost)
        assert c is not None
        hv = c.hypervolumes
        assert (f"dendritic front {hv[DENDRITIC]:.4f}, baseline front {hv[BASELINE]:.4f} "
                f"(dendritic / baseline: {hv[DENDRITIC] / hv[BASELINE]:.2f}x)") in text
        assert f"reference point best_val_acc {c.reference.accuracy:.4f}, {COST_LABELS[cost]} " \
               f"{c.reference.cost:,.0f}" in text
        labels = figure.axes[0].get_legend_handles_labels()[1]
        assert f"dendritic front (hypervolume {hv[DENDRITIC]:.3g})" in labels
        assert f"baseline front (hypervolume {hv[BASELINE]:.3g})" in labels
        assert any(label.startswith("reference point") for label in labels)
    # best baseline 0.89 less 1 pp: the dendritic 1200-parameter model against the baseline's 2500
    assert ("Smallest dendritic model within 1 pp of the best baseline (best_val_acc >= 0.8800), on flash (int8 "
            f"TFLite bytes): {int(1200 * 1.1) + 400:,} (trial 1, run r1, best_val_acc 0.8800); smallest baseline: "
            f"{int(5000 * 1.1) + 400:,} (trial 3, run r3, best_val_acc 0.8900); dendritic / baseline 0.29x.") in text
    assert section.table is not None and section.table.columns[0] == "family"
    assert section.table["family"].tolist() == [DENDRITIC] * 3 + [BASELINE] * 3


def test_compression_falls_back_to_parameters_and_macs() -> None:
    plain = [{k: v for k, v in t.items() if k not in ("tflite_int8_bytes", "arena_bytes")} for t in STUDY + BASE]
    section = compression(build_sections(frame(plain), "best_val_acc", True, within_pp=3))  # one study, both
    assert list(section.figures) == ["pareto_params", "pareto_macs"]
    assert all(png[:4] == b"\x89PNG" for png in section.figures.values())
    text = "\n".join(section.text)
    assert "Best baseline (no dendrites): val accuracy 0.8900 with 5000 parameters" in text
    assert "hypervolume of the dendritic front" in text and ", baseline front" in text
    assert "within 3 pp of the best baseline (best_val_acc >= 0.8600), on parameters: 1,200" in text


def test_compression_without_a_baseline_says_so() -> None:
    section = compression(build_sections(frame(STUDY), "best_val_acc", True))
    assert section.text[0].startswith("Give a baseline sweep")
    assert "hypervolume of the dendritic front" in section.text[1] and "baseline front" not in section.text[1]
    assert not [line for line in section.text if line.startswith("Smallest")]
