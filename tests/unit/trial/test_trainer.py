"""trial/trainer.py's StopRule: the baseline stops by PAI's own rule for "this phase stopped improving"."""
from __future__ import annotations

from pathlib import Path

from dendrisweep.settings import defaults
from dendrisweep.trial.trainer import StopRule


def stops_at(rule: StopRule, scores: list[float]) -> int | None:
    """The 0-based epoch at which the rule stops, or None."""
    return next((epoch for epoch, score in enumerate(scores) if rule.update(score)), None)


def test_it_stops_after_patience_epochs_without_a_gain() -> None:
    scores = [0.5, 0.6, 0.7, 0.8] + [0.8] * 10
    assert stops_at(StopRule(patience=3), scores) == 6  # last gain at epoch 3, then 3 epochs without


def test_the_first_epoch_never_counts_and_a_run_lasts_at_least_the_patience() -> None:
    assert stops_at(StopRule(patience=4), [0.9] + [0.1] * 10) == 5  # epoch 1 is the first gain counted


def test_a_gain_must_beat_the_best_by_the_relative_threshold() -> None:
    creeping = [0.5, 0.8] + [0.8 + 0.0001 * i for i in range(1, 20)]
    assert stops_at(StopRule(patience=5, threshold=0.0), creeping) is None  # every tiny gain counts
    assert stops_at(StopRule(patience=5, threshold=0.001), creeping) == 6  # 0.01 % steps are below 0.1 %


def test_warmup_epochs_count_no_gain_and_delay_the_stop() -> None:
    assert stops_at(StopRule(patience=3, warmup=4), [0.5, 0.6, 0.7, 0.8, 0.9] + [0.9] * 10) == 8


def test_lookback_smooths_the_score_and_so_lengthens_the_run() -> None:
    """PAI's exponential average starts from 0: the smoothed score keeps rising, by more than the 1e-5
    floor, for a while after the raw score has flattened."""
    flat = [0.8] * 60
    plain, smoothed = stops_at(StopRule(patience=3), flat), stops_at(StopRule(patience=3, lookback=3), flat)
    assert plain == 4 and smoothed is not None and 20 < smoothed < 40


def test_the_rule_comes_from_the_same_settings_as_pais() -> None:
    rule = StopRule.of({**defaults(), "n_epochs_to_switch": 15, "initial_history_after_switches": 2,
                        "history_lookback": 3, "improvement_threshold": [0.01, 0.001]})
    assert (rule.patience, rule.warmup, rule.lookback, rule.threshold) == (15, 2, 3, 0.01)


def test_edge_impulses_time_limit_keeps_room_for_export_and_the_gate(tmp_path: Path) -> None:
    """maxTrainingTimeSeconds: training ends EXPORT_RESERVE_SECONDS early (a quarter of a short limit)."""
    from dendrisweep.trial.options import TrialOptions
    from dendrisweep.trial.run import EXPORT_RESERVE_SECONDS, training_deadline

    def options(info: dict[str, object], edge_impulse: bool = True) -> TrialOptions:
        return TrialOptions({}, None, False, None, tmp_path, "p", block_output=tmp_path if edge_impulse else None,
                            info=info)

    assert training_deadline(options({"maxTrainingTimeSeconds": 3600}), now=0.0) == 3600 - EXPORT_RESERVE_SECONDS
    assert training_deadline(options({"maxTrainingTimeSeconds": 100}), now=0.0) == 25.0
    assert training_deadline(options({}), now=0.0) is None
    assert training_deadline(options({"maxTrainingTimeSeconds": 3600}, edge_impulse=False), now=0.0) is None


def test_training_stops_before_another_epoch_would_overrun_the_deadline() -> None:
    import time

    from dendrisweep import device
    from dendrisweep.data import load_dataset
    from dendrisweep.models import build_model
    from dendrisweep.trial.trainer import TIME_BUDGET, strategy_for, train

    config = {**defaults(), "dendrites": False, "epochs": 50, "builtin_samples": 200}
    data = load_dataset(None, config)
    strategy = strategy_for(config)
    model = strategy.prepare(build_model(config, data.shape), device.resolve("cpu"))
    epochs: list[int] = []
    result = train(model, data, config, strategy, lambda record: epochs.append(record.epoch),
                   device.Precision(device.resolve("cpu"), "off"), deadline=time.perf_counter())
    assert result.stop_reason == TIME_BUDGET and result.epochs_run == 1 == len(epochs)
