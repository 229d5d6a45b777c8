"""sweep/launcher.py: one launcher port. A sweep, the verdict's replicates and regenerate's retraining all run
their trials through the launcher they are given; here one that trains in process and starts nothing."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from dendrisweep.contract import RESULT_FILE, TrialRecord
from dendrisweep.errors import UsageError
from dendrisweep.sweep import AgentOptions, Controller, Job, Launcher, LocalLauncher, SweepSource, TrialFiles, retrain
from dendrisweep.sweep.retraining import GROUP, TRAIN_TRIAL
from dendrisweep.sweep.settle import Observed
from dendrisweep.sweep.spec import DEFAULT_COMMAND, parse_sweep
from dendrisweep.verdict import Replicate, run_replicates
from tests.helpers import record_of

SPEC = parse_sweep({"program": "train.py", "method": "random", "metric": {"name": "best_val_acc", "goal": "maximize"},
                    "run_cap": 4, "parameters": {"lr": {"min": 0.0, "max": 0.5}, "seed": {"value": 0}}},
                   Path("port.yaml"))


def accuracy(params: dict[str, Any]) -> float:
    return round(0.5 + float(params["lr"]) + int(params["seed"]) / 100_000, 6)


class InProcessLauncher:
    """The port with no process: each job "trains" at once, hands its epochs over as logged rows and writes the
    TrialRecord result.json a trial-contract program writes; `status(params)` says how it ends."""

    def __init__(self, status: Callable[[dict[str, Any]], str] = lambda params: "finished") -> None:
        self.status = status
        self.launched: list[tuple[int, Job, TrialFiles]] = []
        self.sessions = self.open = 0
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[None]:
        self.sessions += 1
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1

    def where(self, worker: int) -> str | None:
        return f"slot{worker}"

    def launch(self, job: Job, files: TrialFiles, *, worker: int, on_row: Callable[[dict[str, Any]], bool],
               stop: threading.Event, timeout: float | None = None) -> Observed:
        assert self.open == 1, "launched outside the launcher's session"
        with self._lock:
            self.launched.append((worker, job, files))
        acc = accuracy(job.params)
        for epoch in (1, 2):
            on_row({"epoch": epoch, "best_val_acc": acc * epoch / 2})
        record = TrialRecord(run_id=files.run_id, status=self.status(job.params), config=dict(job.params),
                             best_val_acc=acc, test_acc=acc - 0.01, epochs_run=2)
        files.trial_dir.mkdir(parents=True)
        (files.trial_dir / RESULT_FILE).write_text(json.dumps(record.to_json()))
        return Observed(0, reported=record, seconds=0.01)


def options(tmp_path: Path, launcher: Launcher, **extra: Any) -> AgentOptions:
    return AgentOptions(spec=SPEC, study_name="port", storage_url=f"sqlite:///{tmp_path / 'port.db'}",
                        run_dir=tmp_path / "runs", workers=2, progress=False, launcher=launcher, **extra)


def test_a_sweep_runs_through_the_launcher_it_is_given(tmp_path: Path) -> None:
    launcher = InProcessLauncher()
    controller = Controller(options(tmp_path, launcher), SweepSource(options(tmp_path, launcher)))
    controller.run()
    trials = controller.open().get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4 and len(launcher.launched) == 4
    assert launcher.sessions == 1 and launcher.open == 0  # one session, held while every trial ran
    assert {worker for worker, _, _ in launcher.launched} <= {0, 1}
    for trial in trials:
        record = record_of(trial)
        assert record.status == "finished" and trial.value == record.objective == accuracy(record.config)
        assert (Path(str(record.trial_dir)) / RESULT_FILE).is_file()
        assert trial.intermediate_values == {1: trial.value / 2, 2: trial.value}  # the rows it handed over


def test_the_agents_default_launcher_holds_the_processes_threads_gpus_and_wandb_service(tmp_path: Path) -> None:
    opts = AgentOptions(spec=SPEC, study_name="port", storage_url="sqlite://", run_dir=tmp_path, workers=2,
                        gpus=("3", "5"))
    launcher = Controller(opts, SweepSource(opts)).launcher
    assert isinstance(launcher, LocalLauncher)
    assert [launcher.where(w) for w in range(3)] == ["gpu3", "gpu5", "gpu3"]
    assert launcher.share_wandb is False  # train.py may leave its run to W&B's exit hook: no shared service
    spec = parse_sweep({"program": "train_trial.py", "method": "random", "parameters": {"epochs": {"values": [1, 2]}}},
                       Path("ours.yaml"))
    ours = AgentOptions(spec=spec, study_name="o", storage_url="sqlite://", run_dir=tmp_path)
    launcher = Controller(ours, SweepSource(ours)).launcher
    assert isinstance(launcher, LocalLauncher) and launcher.share_wandb is True  # train_trial.py finishes its runs


def replicate(family: str, seed: int) -> Replicate:
    return Replicate(f"{family}-abc-seed{seed}", family, f"port-verdict:{family}-abc", {"lr": 0.1, "seed": seed})


def test_the_verdicts_replicates_run_through_the_launcher_they_are_given(tmp_path: Path) -> None:
    launcher = InProcessLauncher()
    wanted = [replicate(family, seed) for family in ("dendritic", "baseline") for seed in (1000, 1001)]
    records = run_replicates(options(tmp_path, launcher), {"dendritic": SPEC, "baseline": SPEC}, wanted)
    assert launcher.sessions == 1 and len(launcher.launched) == 4
    assert sorted((job.group, job.params["seed"]) for _, job, _ in launcher.launched) == sorted(
        (r.group, r.params["seed"]) for r in wanted)
    assert set(records) == {r.key for r in wanted}
    assert records["baseline-abc-seed1001"].objective == accuracy({"lr": 0.1, "seed": 1001})
    assert records["baseline-abc-seed1001"].test_acc == pytest.approx(accuracy({"lr": 0.1, "seed": 1001}) - 0.01)
    again = InProcessLauncher()
    assert run_replicates(options(tmp_path, again), {"dendritic": SPEC, "baseline": SPEC}, wanted) == records
    assert again.launched == []  # settled replicates run nothing, whichever launcher is given


def test_regenerates_retraining_runs_through_the_launcher_it_is_given(tmp_path: Path) -> None:
    launcher = InProcessLauncher()
    configs = {"dendritic": {"lr": 0.2, "seed": 0}, "baseline": {"lr": 0.1, "seed": 0}}
    records = retrain(configs, tmp_path, tmp_path / "data", "proj", launcher)
    assert launcher.sessions == 1 and sorted(worker for worker, _, _ in launcher.launched) == [0, 1]
    for worker, job, files in launcher.launched:
        name = list(configs)[worker]
        assert job.params == configs[name] and (job.group, job.project) == (GROUP, "proj")
        assert job.command == (*DEFAULT_COMMAND[:3], "--data-directory", str(tmp_path / "data"))
        assert job.program == str(TRAIN_TRIAL) and files.run_dir == (tmp_path / name).resolve()
    assert {name: r.best_val_acc for name, r in records.items()} == {n: accuracy(c) for n, c in configs.items()}
    assert all(r.status == "finished" for r in records.values())


def test_a_retrained_model_that_does_not_finish_is_one_error_naming_it(tmp_path: Path) -> None:
    launcher = InProcessLauncher(lambda params: "diverged" if params["lr"] > 0.15 else "finished")
    with pytest.raises(UsageError, match="retraining the dendritic model failed"):
        retrain({"dendritic": {"lr": 0.2, "seed": 0}, "baseline": {"lr": 0.1, "seed": 0}}, tmp_path, None, "p",
                launcher)
