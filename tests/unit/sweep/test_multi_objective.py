"""`method: custom` sweeps (W&B's multi-objective form): checked by W&B's rules, searched by W&B's own Optuna
scheduler code, told every objective, driven by a fake launcher (no processes)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from dendrisweep.errors import UsageError
from dendrisweep.sweep.controller import AgentOptions, Controller, SweepSource, tally
from dendrisweep.sweep.settle import Observed
from dendrisweep.sweep.spec import SweepSpec, load_sweep, parse_sweep
from tests.helpers import FakeLauncher, record_of

# W&B's own test configs for its client-side Optuna scheduler (wandb tests/unit_tests/test_sweeps, 0.31's
# scheduler): their metric, parameters and scheduler blocks unchanged, plus the program a sweep file names
# (W&B's tests hand the block to the optimizer directly).
WANDB_DECLARATIVE = {"metrics": [{"name": "loss", "goal": "minimize"}, {"name": "accuracy", "goal": "maximize"}],
                     "parameters": {"lr": {"min": 0.0, "max": 1.0}}, "scheduler": {"engine": "optuna"}}
WANDB_DEFINE_BY_RUN_SOURCE = "def define_by_run(trial):\n    return {'lr': trial.suggest_float('lr', 0.0, 1.0)}\n"


def spec_of(raw: dict[str, Any]) -> SweepSpec:
    return parse_sweep({"program": "train.py", "method": "custom", **raw}, Path("moo.yaml"))


def options(tmp_path: Path, spec: SweepSpec, **extra: Any) -> AgentOptions:
    return AgentOptions(spec=spec, study_name="s", storage_url=f"sqlite:///{tmp_path / 's.db'}",
                        run_dir=tmp_path / "runs", progress=False, **extra)


def both_metrics(job: Any, n: int) -> Observed:
    """A run that logged `loss` = lr and `accuracy` = sqrt(lr) (a trade-off: every lr is Pareto-optimal)."""
    lr = job.params["lr"]
    return Observed(0, summary={"loss": lr, "accuracy": lr ** 0.5}, logged=True, seconds=0.01)


def run(tmp_path: Path, spec: SweepSpec, launcher: FakeLauncher, **extra: Any) -> optuna.Study:
    opts = options(tmp_path, spec, launcher=launcher, **extra)
    controller = Controller(opts, SweepSource(opts))
    controller.run()
    return controller.open()


def test_wandbs_declarative_multi_objective_config_runs_with_a_direction_and_a_value_per_metric(
        tmp_path: Path) -> None:
    study = run(tmp_path, spec_of({**WANDB_DECLARATIVE, "run_cap": 5}), FakeLauncher(both_metrics))
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.metric_names == ["loss", "accuracy"]  # optuna-dashboard names the axes by them
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5
    for trial in trials:
        lr = trial.params["lr"]  # W&B's mapping: the parameter's own value, not a quantile
        assert trial.values == [lr, pytest.approx(lr ** 0.5)] and record_of(trial).config == {"lr": lr}
    assert tally(study).front == 5


def test_wandbs_define_by_run_config_asks_its_search_space_function(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # W&B reads scheduler.source from the working directory
    Path("search_space.py").write_text(WANDB_DEFINE_BY_RUN_SOURCE)
    spec = spec_of({"metric": {"name": "loss", "goal": "minimize"}, "parameters": {}, "run_cap": 3,
                    "scheduler": {"engine": "optuna", "source": "search_space.py", "search_space": "define_by_run"}})
    launcher = FakeLauncher()  # logs loss = lr's stand-in x: here the program sees `lr`
    launcher.outcome = lambda job, n: Observed(0, summary={"loss": job.params["lr"]}, logged=True, seconds=0.01)
    study = run(tmp_path, spec, launcher)
    assert [job.params.keys() for job, _ in launcher.jobs] == [{"lr"}] * 3
    assert [t.value for t in study.get_trials()] == [job.params["lr"] for job, _ in launcher.jobs]


OPTIMIZER_SOURCE = '''
import optuna

def optimizer(sweep):
    sampler = optuna.samplers.NSGAIISampler(seed=1, population_size=4,
                                           constraints_func=lambda t: [t.params["lr"] - 0.5])
    study = optuna.create_study(directions=[m["goal"] for m in sweep.config["metrics"]], sampler=sampler)
    return study, lambda study: len(study.trials) >= 4
'''


def test_an_optimizer_factory_gives_the_stored_study_its_sampler_and_its_terminator_ends_the_sweep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("factory.py").write_text(OPTIMIZER_SOURCE)
    spec = spec_of({**WANDB_DECLARATIVE, "scheduler": {"engine": "optuna", "source": "factory.py",
                                                        "optimizer": "optimizer"}})
    study = run(tmp_path, spec, FakeLauncher(both_metrics))
    assert isinstance(study.sampler, optuna.samplers.NSGAIISampler)
    assert len(study.trials) == 4  # no run_cap: the factory's terminator ended it
    for trial in study.trials:  # the factory's constraint, kept by its sampler: lr <= 0.5 is feasible
        assert trial.system_attrs["constraints"] == [pytest.approx(trial.params["lr"] - 0.5)]


def test_a_sampler_that_fails_stops_the_agent_with_one_line_and_keeps_the_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("factory.py").write_text(OPTIMIZER_SOURCE.replace('t.params["lr"]', 't.values[0]'))  # None in after_trial
    spec = spec_of({**WANDB_DECLARATIVE, "scheduler": {"engine": "optuna", "source": "factory.py",
                                                        "optimizer": "optimizer"}})
    with pytest.raises(UsageError, match=r"the sweep's sampler failed after trial 0: TypeError") as stopped:
        run(tmp_path, spec, FakeLauncher(both_metrics))
    assert "\n" not in str(stopped.value)
    (trial,) = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}").trials
    assert trial.state == TrialState.COMPLETE and record_of(trial).status == "finished"


def test_a_run_missing_one_objective_fails_with_the_metric_named(tmp_path: Path) -> None:
    launcher = FakeLauncher(lambda job, n: Observed(0, summary={"loss": 0.1}, logged=True, seconds=0.01))
    study = run(tmp_path, spec_of({**WANDB_DECLARATIVE, "run_cap": 1}), launcher, flapping_guard=False)
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL and record_of(trial).reason == "the run logged no finite accuracy to W&B"


@pytest.mark.parametrize(("raw", "message"), [
    ({"method": "bayes", **WANDB_DECLARATIVE, "scheduler": None},
     "`metrics` requires `method: custom` (got `method: bayes`)"),
    ({**WANDB_DECLARATIVE, "metric": {"name": "loss"}}, "`metric` and `metrics` cannot both be set"),
    ({**WANDB_DECLARATIVE, "metrics": [{"name": "loss"}]}, "metrics: expected a list of at least 2"),
    ({**WANDB_DECLARATIVE, "early_terminate": {"type": "hyperband", "min_iter": 3}},
     "`early_terminate` cannot be used together with `scheduler`"),
    ({**WANDB_DECLARATIVE, "scheduler": {"engine": "wandb"}}, "`scheduler.engine: wandb` does not support `method: "
                                                             "custom`"),
    ({**WANDB_DECLARATIVE, "scheduler": {"engine": "ax"}}, "scheduler.engine: ax is not run offline"),
    ({**WANDB_DECLARATIVE, "scheduler": {"engine": "optuna", "optimizer": "f"}}, "scheduler.optimizer: needs "
                                                                                 "scheduler.source"),
    ({**WANDB_DECLARATIVE, "scheduler": {"engine": "optuna", "source": "nowhere.py", "optimizer": "f"}},
     "scheduler.source: no file nowhere.py"),
    ({**WANDB_DECLARATIVE, "scheduler": {"engine": "optuna", "sampler": "tpe"}}, "scheduler.sampler: not a "
                                                                                 "scheduler key"),
])
def test_wandbs_rules_for_multi_objective_sweeps_are_one_line_each(raw: dict[str, Any], message: str) -> None:
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(UsageError, match=None) as refused:
        spec_of(raw)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_our_program_needs_metrics_it_reports() -> None:
    raw = {"program": "train_trial.py", "method": "custom", "parameters": {"learning_rate": {"values": [0.01, 0.02]}},
           "metrics": [{"name": "best_val_acc", "goal": "maximize"}, {"name": "flash", "goal": "minimize"}]}
    with pytest.raises(UsageError, match=r"metrics\[1\].name: 'flash' is not reported by train_trial.py"):
        parse_sweep(raw, Path("ours.yaml"))


def test_shipped_pareto_sweep_is_a_valid_multi_objective_sweep() -> None:
    path = Path(__file__).parents[3] / "sweeps" / "kws_pareto.yaml"
    spec = load_sweep(path)
    assert spec.method == "custom" and spec.multi_objective
    assert spec.objectives == (("best_val_acc", "maximize"), ("tflite_int8_bytes", "minimize"))
    assert yaml.safe_load(path.read_text())["parameters"]["deploy_metrics"] == {"value": True}


def deployed_outcome(job: Any, n: int) -> Observed:
    """Our program's record: accuracy grows with width, and so do flash and RAM (over the limit from 2.0)."""
    from dendrisweep.contract import TrialRecord

    width = job.params["width_multiplier"]
    record = TrialRecord(status="finished", best_val_acc=0.8 + 0.05 * width, tflite_int8_bytes=int(30000 * width),
                         arena_bytes=int(9000 * width), tflite_int8_latency_ms=1.0)
    return Observed(0, reported=record, seconds=0.01)


def test_the_device_limits_factory_keeps_trials_over_a_limit_off_the_front(tmp_path: Path) -> None:
    spec = load_sweep(Path(__file__).parents[3] / "sweeps" / "kws_pareto_device.yaml")
    study = run(tmp_path, replace(spec, run_cap=12), FakeLauncher(deployed_outcome))
    assert type(study.sampler).__name__ == "LimitedTPESampler"
    for trial in study.trials:  # flash and arena from the told values and the stored record
        width = trial.params["width_multiplier"]
        flash, arena, latency = trial.system_attrs["constraints"]
        assert (flash, arena, latency) == (30000 * width - 65536, 9000 * width - 16384, 1.0 - 20.0)
    front = study.best_trials
    assert front and all(t.params["width_multiplier"] < 2.0 for t in front)  # 2.0: arena 18,000 > 16,384


def test_a_repeated_config_is_told_the_earlier_values_instead_of_training_again(tmp_path: Path) -> None:
    spec = spec_of({**WANDB_DECLARATIVE, "parameters": {"lr": {"values": [0.25, 0.5]}}, "run_cap": 5})
    launcher = FakeLauncher(both_metrics)
    study = run(tmp_path, spec, launcher)
    assert len(study.trials) == 5 and all(t.state == TrialState.COMPLETE for t in study.trials)
    trained = {job.params["lr"] for job, _ in launcher.jobs}
    assert len(launcher.jobs) == len(trained) <= 2  # no config trained twice (the sampler's first draws are random)
    runs = [t for t in study.trials if record_of(t).run_id is not None]
    assert sorted(t.params["lr"] for t in runs) == sorted(trained) and len(study.trials) - len(runs) >= 3
    for trial in (t for t in study.trials if t not in runs):
        first = next(t for t in runs if t.params == trial.params)
        assert record_of(trial).reason == f"duplicate of trial {first.number}: its values told, not trained again"
        assert trial.values == first.values


def test_a_scheduler_with_source_optimizer_and_search_space_uses_all_three(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("both.py").write_text(OPTIMIZER_SOURCE + WANDB_DEFINE_BY_RUN_SOURCE)
    spec = spec_of({"metrics": WANDB_DECLARATIVE["metrics"], "scheduler": {
        "engine": "optuna", "source": "both.py", "optimizer": "optimizer", "search_space": "define_by_run"}})
    launcher = FakeLauncher(both_metrics)
    study = run(tmp_path, spec, launcher)
    assert isinstance(study.sampler, optuna.samplers.NSGAIISampler) and len(study.trials) == 4  # its terminator
    assert [set(job.params) for job, _ in launcher.jobs] == [{"lr"}] * 4  # the define-by-run space


def test_the_device_limits_factory_works_under_wandbs_own_scheduler_loop() -> None:
    """W&B's client-side optimizer (no server: its ask/tell as `wandb sweep-scheduler` drives them) with the
    shipped factory: limits on the told metrics count, from the values W&B tells."""
    from wandb.sdk.sweeps.run_state import RunState
    from wandb.sdk.sweeps.scheduler.optimizer import RunWithMetrics
    from wandb.sdk.sweeps.scheduler.optuna import build_optuna_optimizer

    from dendrisweep.sweep.scheduler import sweep_info

    raw = yaml.safe_load((Path(__file__).parents[3] / "sweeps" / "kws_pareto_device.yaml").read_text())
    raw["scheduler"]["source"] = str(Path(__file__).parents[3] / raw["scheduler"]["source"])
    raw["metrics"].append({"name": "arena_bytes", "goal": "minimize"})
    optimizer = build_optuna_optimizer(sweep_info(parse_sweep(raw, Path("w.yaml")), "w", "p"))
    for flash, arena in ((30000, 9000), (30000, 20000)):
        (suggestion,) = optimizer.ask_n_runs(1)
        optimizer.tell_run(suggestion.run_id, RunWithMetrics(
            config=suggestion.config, state=RunState.FINISHED, wandb_run_id="r", history_metrics=[],
            summary_metrics={"best_val_acc": 0.9, "tflite_int8_bytes": flash, "arena_bytes": arena}))
    first, second = optimizer.study.trials
    assert list(first.system_attrs["constraints"]) == [30000 - 65536, 9000 - 16384, 0.0]  # latency: not told here
    assert second.system_attrs["constraints"][1] == 20000 - 16384 and optimizer.study.best_trials == [first]
