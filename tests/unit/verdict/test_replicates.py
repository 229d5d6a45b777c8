"""verdict/replicates.py: given configs with given seeds, each run once through the agent's loop (a fake launcher)."""
from __future__ import annotations

from pathlib import Path

from dendrisweep.sweep.controller import AgentOptions, Controller
from dendrisweep.sweep.launch import Job
from dendrisweep.sweep.settle import Observed
from dendrisweep.sweep.spec import parse_sweep
from dendrisweep.verdict.replicates import (
    Replicate,
    ReplicateSource,
    replicate_options,
    settled_replicates,
)
from tests.helpers import FakeLauncher

SPEC = parse_sweep({"program": "train.py", "method": "bayes", "metric": {"name": "acc", "goal": "maximize"},
                    "run_cap": 2, "early_terminate": {"type": "hyperband", "min_iter": 1},
                    "parameters": {"lr": {"values": [0.1, 0.2]}, "seed": {"value": 0}}}, Path("dend.yaml"))


def replicates(seeds: range, family: str = "dendritic") -> list[Replicate]:
    return [Replicate(f"{family}-abc-seed{s}", family, f"dend-verdict:{family}-abc", {"lr": 0.1, "seed": s})
            for s in seeds]


def scored(job: Job, n: int) -> Observed:
    return Observed(0, summary={"acc": 0.8 + job.params["seed"] / 10_000, "test_acc": 0.79}, logged=True)


def replicate(tmp_path: Path, wanted: list[Replicate], launcher: FakeLauncher) -> Controller:
    opts = AgentOptions(spec=SPEC, study_name="dend-verdict", storage_url=f"sqlite:///{tmp_path / 'v.db'}",
                        run_dir=tmp_path / "runs", workers=2, progress=False, launcher=launcher)
    source = ReplicateSource({"dendritic": SPEC, "baseline": SPEC}, wanted, opts.wandb_project)
    controller = Controller(replicate_options(opts), source)
    controller.run()
    return controller


def test_each_replicate_runs_once_in_its_configs_group(tmp_path: Path) -> None:
    launcher = FakeLauncher(scored)
    wanted = replicates(range(1000, 1003)) + replicates(range(1000, 1003), "baseline")
    controller = replicate(tmp_path, wanted, launcher)
    jobs = sorted((job.group, job.params["seed"], job.project) for job, _ in launcher.jobs)
    assert jobs == sorted((r.group, r.params["seed"], "dend-verdict") for r in wanted)
    records = settled_replicates(controller.open().get_trials(), [r.key for r in wanted])
    assert set(records) == {r.key for r in wanted}
    assert records["dendritic-abc-seed1001"].objective == 0.8 + 1001 / 10_000
    assert records["dendritic-abc-seed1001"].test_acc == 0.79 and records["dendritic-abc-seed1001"].status == "finished"


def test_asking_again_runs_nothing_and_more_seeds_run_only_the_new_ones(tmp_path: Path) -> None:
    replicate(tmp_path, replicates(range(1000, 1002)), FakeLauncher(scored))
    again = FakeLauncher(scored)
    replicate(tmp_path, replicates(range(1000, 1002)), again)
    assert again.jobs == []
    more = FakeLauncher(scored)
    replicate(tmp_path, replicates(range(1000, 1004)), more)
    assert sorted(job.params["seed"] for job, _ in more.jobs) == [1002, 1003]


def test_a_preempted_replicate_runs_again_and_a_crashed_one_stays_failed(tmp_path: Path) -> None:
    def outcome(job: Job, n: int) -> Observed:
        if job.params["seed"] == 1000 and n == 1:
            return Observed(-15)  # preempted: run again
        if job.params["seed"] == 1001:
            return Observed(1, stderr_tail="crash")
        return scored(job, n)

    wanted = replicates(range(1000, 1002))
    controller = replicate(tmp_path, wanted, FakeLauncher(outcome))
    trials = controller.open().get_trials()
    assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL", "FAIL"]
    records = settled_replicates(trials, [r.key for r in wanted])
    assert records["dendritic-abc-seed1000"].status == "finished"
    assert records["dendritic-abc-seed1001"].status == "failed"  # settled: counted, with its reason
    assert records["dendritic-abc-seed1001"].reason == "exit code 1: crash"


def test_replicates_keep_the_metric_but_nothing_that_stops_a_run_early(tmp_path: Path) -> None:
    opts = replicate_options(AgentOptions(spec=SPEC, study_name="v", storage_url="sqlite://", run_dir=tmp_path))
    assert opts.spec.metric == "acc" and opts.spec.maximize
    assert opts.spec.hyperband is None and opts.spec.run_cap is None and opts.spec.target is None
    assert opts.sampler == "random" and opts.flapping_window == 0
