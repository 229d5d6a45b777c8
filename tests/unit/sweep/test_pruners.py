"""sweep/pruners.py: W&B's own hyperband rule decides which running trial to stop."""
from __future__ import annotations

from pathlib import Path

import optuna

from dendrisweep.sweep.spec import parse_sweep
from dendrisweep.sweep.storage import quiet_optuna


def test_hyperband_stops_the_runs_wandbs_engine_stops() -> None:
    """The example in the engine's own docstring (sweeps/hyperband_stopping.py): bands 1 and 2; b is
    stopped at band 1, c passes band 1 but not band 2, d passes both; finished runs count too."""
    from optuna.distributions import FloatDistribution

    from dendrisweep.sweep.pruners import WandbHyperband, bands

    raw = {"program": "train.py", "method": "grid", "metric": {"name": "loss", "goal": "minimize"},
           "early_terminate": {"type": "hyperband", "max_iter": 5, "eta": 2, "s": 2},
           "parameters": {"a": {"values": [1, 2, 3]}}}
    spec = parse_sweep(raw, Path("t.yaml"))
    assert bands(raw["early_terminate"]) == [1, 2]
    quiet_optuna()
    study = optuna.create_study(pruner=WandbHyperband(spec))
    for history in ([10, 9], [10, 6, 6]):  # a and e: finished
        study.add_trial(optuna.trial.create_trial(
            value=history[-1], params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
            intermediate_values=dict(enumerate(history, start=1))))
    running = {name: study.ask() for name in "bcd"}
    histories = {"b": [10, 10], "c": [10, 8, 8], "d": [10, 7, 7]}
    for name, trial in running.items():
        for step, value in enumerate(histories[name], start=1):
            trial.report(value, step)
    assert {name: trial.should_prune() for name, trial in running.items()} == {"b": True, "c": True, "d": False}
