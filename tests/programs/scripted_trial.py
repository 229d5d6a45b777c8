"""A stand-in for train_trial.py that speaks the same protocol in a tenth of a second, or misbehaves on cue.

The agent launches it exactly like train_trial.py (the sweep's `command`, WANDB_RUN_ID, the trial folder
under DENDRISWEEP_OUT_DIR): it writes history.jsonl and result.json with a deterministic objective of its
W&B-style `--name=value` arguments. It exists so tests and benches can put hundreds of trials through
the storage (and the failure handling) without paying for training. Flags before the sweep's ${args}:

    --sleep S      wait S seconds per epoch (a trial with some duration, for kill tests)
    --flood MB     first write MB megabytes to stdout and to stderr
    --hang         never finish (the agent's --timeout-per-trial must stop it)
    --exit CODE    then exit with CODE instead of writing a result
    --preempted    then stop itself with SIGTERM, as a cluster scheduler's preemption would
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import zlib
from pathlib import Path

EPOCHS = 3


def objective(params: dict[str, str]) -> float:
    """A deterministic value in [0, 1) for a parameter set: different sets almost never tie."""
    key = json.dumps(params, sort_keys=True).encode()
    return (zlib.crc32(key) % 100_000) / 100_000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--flood", type=float, default=0.0)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--exit", type=int)
    parser.add_argument("--preempted", action="store_true")
    opts, rest = parser.parse_known_args()  # the rest: the sweep's --name=value arguments
    params = dict(arg.lstrip("-").split("=", 1) for arg in rest if "=" in arg)
    run_id = os.environ["WANDB_RUN_ID"]
    trial_dir = Path(os.environ["DENDRISWEEP_OUT_DIR"]) / f"trial-{run_id}"
    trial_dir.mkdir(parents=True)
    if opts.flood:
        line = "x" * 1023 + "\n"
        for _ in range(int(opts.flood * 1024)):
            sys.stdout.write(line)
            sys.stderr.write(line)
    if opts.preempted:
        os.kill(os.getpid(), signal.SIGTERM)
    if opts.exit is not None:
        print("scripted failure", file=sys.stderr)
        return opts.exit
    value = objective(params)
    with (trial_dir / "history.jsonl").open("w") as history:
        for epoch in range(1, EPOCHS + 1):
            time.sleep(opts.sleep)
            history.write(json.dumps({"epoch": epoch, "best_val_acc": value * epoch / EPOCHS}) + "\n")
            history.flush()
    while opts.hang:
        time.sleep(1)
    result = {"status": "finished", "reason": "", "run_id": run_id, "trial_dir": str(trial_dir),
              "best_val_acc": value, "epochs_run": EPOCHS, "config": params,
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}  # the GPU its agent gave it
    (trial_dir / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
