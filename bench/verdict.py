"""The verdict, measured: replicate wall time per config, and the verdict machinery's cost beyond training.

On the offline spoken-keyword set (real eSpeak NG audio as Edge Impulse MFCCs), runs a small dendritic
and a baseline sweep (real train_trial.py trials, the data folder passed in the sweeps' `command`),
then `python -m analysis verdict --top K --seeds N`, and reads the replicate study it made:
- per config: replicates, mean wall time of a replicate as its trial process measured it
  (result.json `wall_seconds`) and as the agent saw it (`agent_seconds`: launch, watching, recording);
- the verdict's wall time against its replicates: Σ agent_seconds / workers is what the replicate
  processes take on the given workers (each from launch to recorded; a trial's own start-up is
  bench/overhead.py's business); the rest (loading the studies, planning, the replicate study, the
  statistics, the report, and the last worker's idle tail) is the verdict machinery's overhead.
  Target: <= 10 %.
It ends with the verdict's own statement: the answer on this data at this size.

    python bench/verdict.py [--seeds 5] [--top 1] [--trials 8] [--epochs 300] [--workers 2] [--per-class 600]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import optuna
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dendrisweep.data.spoken import build  # noqa: E402
from dendrisweep.sweep.storage import quiet_optuna, stored_record  # noqa: E402


def sweeps(work: Path, data: Path, trials: int, epochs: int) -> tuple[Path, Path]:
    """A dendritic sweep and its baseline on the data folder (passed in `command`, as users would): the same
    ordinary settings, ranges and budget on both sides (width up to 3.0, so the baseline reaches every
    dendritic size), PAI's dendrite count on top; both train until complete, `epochs` a safety net."""
    common = {"program": "train_trial.py", "method": "bayes", "run_cap": trials,
              "metric": {"name": "best_val_acc", "goal": "maximize"},
              "command": ["${env}", "${interpreter}", "${program}", "--data-directory", str(data), "${args}"]}
    ordinary = {"epochs": {"value": epochs}, "learning_rate": {"distribution": "log_uniform_values", "min": 0.001,
                                                              "max": 0.01},
                "width_multiplier": {"values": [0.5, 1.0, 2.0, 3.0]}}
    dendritic = {**common, "parameters": {"dendrites": {"value": True}, **ordinary,
                                          "max_dendrites": {"values": [1, 2, 3]}}}
    baseline = {**common, "parameters": {"dendrites": {"value": False}, **ordinary}}
    paths = work / "bench_dendritic.yaml", work / "bench_baseline.yaml"
    for path, sweep in zip(paths, (dendritic, baseline), strict=True):
        path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return paths


def run(*args: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, stdin=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--top", type=int, default=1)
    parser.add_argument("--trials", type=int, default=8, help="trials per sweep (the same on both sides)")
    parser.add_argument("--epochs", type=int, default=300, help="the epoch cap, a safety net")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=600)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verdict-") as scratch:
        work = Path(scratch)
        build(work / "keywords", per_class=opts.per_class)
        dendritic, baseline = sweeps(work, work / "keywords", opts.trials, opts.epochs)
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
        runs, out = work / "runs", work / "report"
        for sweep in (dendritic, baseline):
            run("agent.py", str(sweep), "--workers", str(opts.workers), "--runs-dir", str(runs), "--no-progress",
                env=env)
        wall = run("-m", "analysis", "verdict", str(dendritic), "--baseline", str(baseline), "--top", str(opts.top),
                   "--seeds", str(opts.seeds), "--workers", str(opts.workers), "--runs-dir", str(runs), "--out",
                   str(out), "--no-progress", env=env)
        verdict = json.loads((out / "verdict.json").read_text())
        quiet_optuna()
        study = optuna.load_study(study_name=f"{dendritic.stem}-verdict",
                                  storage=f"sqlite:///{runs / dendritic.stem / 'study.db'}")
        report(study.get_trials(deepcopy=False), verdict, wall, opts.workers)


def report(trials: list[Any], verdict: dict[str, Any], wall: float, workers: int) -> None:
    """Per re-run config and round (the choice's seeds, or fresh seeds for a pick), its replicates' numbers."""
    entries = verdict["configs"]
    round_of = {run: i for i, c in enumerate(entries) for run in c["runs"]}
    by_config: dict[int, list[Any]] = defaultdict(list)
    records = [stored_record(trial) for trial in trials]
    for record in records:
        if record.run_id in round_of:
            by_config[round_of[record.run_id]].append(record)
    print(f"\n{'config':<34} {'round':<6} {'params':>7} {'replicates':>10} {'trial s (mean)':>15} "
          f"{'agent s (mean)':>15} {'epochs (mean)':>13}  {'how they stopped':<34} {'test acc mean [95% CI]':>28}")
    for index, members in by_config.items():
        config = entries[index]
        ci = config["test_acc_ci"] or [float("nan")] * 2
        stops = ", ".join(f"{n} {reason}" for reason, n in Counter(r.stop_reason for r in members).most_common())
        print(f"{config['label']:<34} {'fresh' if config['fresh_seeds'] else 'choice':<6} {config['params'] or 0:>7} "
              f"{len(members):>10} {statistics.mean(r.wall_seconds for r in members):>15.1f} "
              f"{statistics.mean(r.agent_seconds for r in members):>15.1f} "
              f"{statistics.mean(r.epochs_run or 0 for r in members):>13.1f}  {stops:<34} "
              f"{config['test_acc_mean']:>10.4f} [{ci[0]:.4f}, {ci[1]:.4f}]")
    training = sum(r.wall_seconds or 0 for r in records) / workers
    agent = sum(r.agent_seconds or 0 for r in records) / workers
    print(f"\nverdict wall time {wall:.1f} s on {workers} workers; replicate processes / workers {agent:.1f} s "
          f"(their training loops and scoring: {training:.1f} s)")
    print(f"verdict machinery beyond the replicates: {wall - agent:.1f} s = {(wall - agent) / agent:.1%} "
          f"(target <= 10 %)")
    print(f"\n{verdict['statement']}")
    for key in ("equal_params", "compression"):
        if verdict.get(key):
            print(verdict[key]["statement"])


if __name__ == "__main__":
    main()
