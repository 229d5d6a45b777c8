"""A training script written the way W&B tells users to write one, for any sweep config.

    run = wandb.init(); config = run.config; ...; run.log({metric: value})

It trains nothing: it logs STANDIN_METRIC (default `loss`) for STANDIN_STEPS steps, a deterministic
function of the config it received, and puts the final value in the summary (or, with STANDIN_CRASH
set, exits 1 right after logging). It knows nothing of
dendrisweep: what it receives and logs is all an agent can go by. Arguments are ignored (sweep
commands pass the parameters as flags too), but recorded in the config as `argv` for the tests.
"""
from __future__ import annotations

import json
import os
import sys
import zlib

import wandb


def objective(config: dict) -> float:
    """A value in [0, 1) that depends on every parameter, nested ones included."""
    return (zlib.crc32(json.dumps(config, sort_keys=True, default=str).encode()) % 100_000) / 100_000


def main() -> None:
    metric = os.environ.get("STANDIN_METRIC", "loss")
    steps = int(os.environ.get("STANDIN_STEPS", "3"))
    run = wandb.init()
    config = {k: v for k, v in dict(run.config).items() if not k.startswith("_")}
    value = objective(config)
    for step in range(1, steps + 1):
        run.log({metric: value * step / steps, "step_seen": step})
    if os.environ.get("STANDIN_CRASH"):
        raise SystemExit("crashed after logging")  # exit 1, the run left for W&B's exit hook to finish
    run.summary[metric] = value
    run.config.update({"argv": sys.argv[1:]}, allow_val_change=True)
    run.finish()


if __name__ == "__main__":
    main()
