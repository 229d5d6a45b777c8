"""Epoch time of the keyword-spotting trial: baseline vs 1 and 2 dendrites, and the overhead.

Runs real trials (train_trial.py, W&B offline, PAI) on the built-in data and prints a table:
median seconds per epoch grouped by the dendrites present, the ratio to the plain baseline measured
in the same run (these machines are noisy: compare ratios, not seconds), and the share of an epoch
spent outside forward/backward/evaluation (PAI bookkeeping, best-model snapshots).

    python bench/trial_speed.py [--epochs 24] [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DENDRITIC = ["--switch-mode", "fixed", "--fixed-switch-num", "6", "--max-dendrites", "2",
             "--max-dendrite-tries", "1", "--improvement-threshold", "0"]


def run(args: list[str], out: Path) -> tuple[dict, list[dict]]:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(out)}
    subprocess.run([sys.executable, str(ROOT / "train_trial.py"), *args, "--out-directory", str(out)],
                   check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    trial = max(out.glob("trial-*"), key=lambda p: p.stat().st_mtime)
    history = [json.loads(line) for line in (trial / "history.jsonl").read_text().splitlines()]
    return json.loads((trial / "result.json").read_text()), history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=1)
    opts = parser.parse_args()
    epochs: dict[str, list[dict]] = defaultdict(list)
    loop = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(opts.repeats):
            for label, args in (("baseline", ["--dendrites", "0"]), ("dendritic", DENDRITIC)):
                result, history = run([*args, "--epochs", str(opts.epochs)], Path(tmp) / f"{label}{repeat}")
                loop[label].append(1 - result["compute_seconds"] / result["train_seconds"])
                for h in history[1:]:  # the first epoch pays one-off warm-up costs
                    key = "baseline (plain model)" if label == "baseline" else f"PAI, {h['dendrites']} dendrites"
                    epochs[key].append(h)
    reference = statistics.median(h["epoch_seconds"] for h in epochs["baseline (plain model)"])
    print(f"{'model':<26}{'epochs':>8}{'s/epoch':>10}{'x baseline':>12}{'outside fwd/bwd':>17}")
    for key, rows in epochs.items():
        seconds = statistics.median(h["epoch_seconds"] for h in rows)
        outside = statistics.median(1 - h["compute_seconds"] / h["epoch_seconds"] for h in rows)
        print(f"{key:<26}{len(rows):>8}{seconds:>10.3f}{seconds / reference:>12.2f}{outside:>16.1%}")
    for label, shares in loop.items():
        print(f"whole loop incl. W&B logging, {label}: {statistics.median(shares):.1%} outside fwd/bwd")


if __name__ == "__main__":
    main()
