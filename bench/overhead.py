"""Per-trial orchestration overhead of the offline agent, against the trial's own training time.

Runs a quickstart-style sweep (bench/overhead_sweep.yaml: 12,000 samples, each trial trained until PAI
finishes, as the fair protocol trains them; real agent, real trials) into a scratch folder and splits
each trial's time, as the agent saw it, into:
- startup: outside the trial's own clock (result.json's wall_seconds): param files, process spawn, imports
  (torch, perforatedai, wandb), data, W&B init; and, at the end, W&B finish, exit, the agent noticing it;
- training: the epoch loop (result.json's train_seconds);
- wrap-up: the rest of the trial's clock: model and PAI set-up, the optimizer (its first use imports
  torch._dynamo), scoring the best model on test, saving it.
Overhead = startup + wrap-up. Target: <= 10 % of the training time on these trials.

    python bench/overhead.py [--sweep bench/overhead_sweep.yaml] [--workers 2]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dendrisweep.sweep import stored_record

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, default=ROOT / "bench" / "overhead_sweep.yaml")
    parser.add_argument("--workers", type=int, default=2)
    opts = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "agent.py"), str(opts.sweep), "--runs-dir", tmp,
                        "--workers", str(opts.workers), "--no-progress"], cwd=ROOT, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        sweep_wall = time.perf_counter() - started
        name = opts.sweep.stem
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{Path(tmp) / name / 'study.db'}")
        rows = []
        for trial in study.get_trials():
            record = stored_record(trial)  # the agent's time and the trial's own, in one record
            assert record is not None and record.agent_seconds and record.wall_seconds and record.train_seconds
            agent, wall, train = record.agent_seconds, record.wall_seconds, record.train_seconds
            rows.append((trial.number, agent, agent - wall, train, wall - train, record.epochs_run,
                         record.stop_reason))
    print(f"{'trial':>5}{'agent s':>10}{'startup s':>11}{'train s':>10}{'wrap-up s':>11}{'overhead':>10}"
          f"{'epochs':>8}  stopped by")
    for number, agent, startup, train, wrapup, epochs, stop in rows:
        share = (startup + wrapup) / train
        print(f"{number:>5}{agent:>10.1f}{startup:>11.2f}{train:>10.1f}{wrapup:>11.2f}{share:>10.1%}{epochs:>8}"
              f"  {stop}")
    overhead = sum(r[2] + r[4] for r in rows) / sum(r[3] for r in rows)
    median = statistics.median((r[2] + r[4]) / r[3] for r in rows)
    print(f"overhead / training time: {overhead:.1%} overall, {median:.1%} median per trial "
          f"({'meets' if overhead <= 0.10 else 'MISSES'} the 10 % target)")
    print(f"sweep wall {sweep_wall:.0f} s with {opts.workers} workers for {len(rows)} trials")


if __name__ == "__main__":
    main()
