"""A stand-in trial whose accuracy is a known function of its config plus seeded noise (for the verdict).

It speaks train_trial.py's trial contract (history.jsonl and result.json in its trial folder, the
sweep's W&B-style `--name=value` arguments) in a few milliseconds, so the verdict's statistics can be
checked against a truth we set:

    true accuracy = 0.80 + EFFECT if dendrites else 0.80  (EFFECT: $NOISY_TRIAL_EFFECT, default 0.05)
    run quality   = N(0, SD), shared by validation and test (SD: $NOISY_TRIAL_SD, default 0.01): a lucky
                    seed is lucky on both, so a config chosen on validation is flattered on test too
    val, test     = each of the split's EXAMPLES examples right with probability truth + quality

The test split (its labels, the same for every run) is saved with the run's predictions, as
train_trial.py saves them. The noise is a function of (seed, every other parameter,
$NOISY_TRIAL_SALT): the same call gives the same numbers, another seed or salt fresh ones. `width`
sets the size (params = 1000 x width, doubled with dendrites). $NOISY_TRIAL_SLEEP seconds of
"training" make a trial long enough to be killed, and $NOISY_TRIAL_FAIL_SEED names a seed whose
runs crash.
"""
from __future__ import annotations

import base64
import json
import os
import random
import struct
import sys
import time
from pathlib import Path
from typing import Any

BASE = 0.80
EXAMPLES = 1000  # per split
CLASSES = 4


def pack(classes: list[int]) -> str:
    """dendrisweep.pack's format (base64 of little-endian int16), without importing the library."""
    return base64.b64encode(struct.pack(f"<{len(classes)}h", *classes)).decode("ascii")


def parse(value: str) -> Any:
    if value in ("True", "False"):
        return value == "True"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def main() -> int:
    params = {k.lstrip("-"): parse(v) for k, v in (arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)}
    effect = float(os.environ.get("NOISY_TRIAL_EFFECT", "0.05"))
    sd = float(os.environ.get("NOISY_TRIAL_SD", "0.01"))
    salt = os.environ.get("NOISY_TRIAL_SALT", "0")
    truth = BASE + (effect if params.get("dendrites") else 0.0)
    noise = random.Random(json.dumps([salt, sorted(params.items())]))
    chance = min(1.0, max(0.0, truth + noise.gauss(0, sd)))
    split = random.Random(f"{salt}-labels")
    labels = [split.randrange(CLASSES) for _ in range(EXAMPLES)]
    val = sum(noise.random() < chance for _ in range(EXAMPLES)) / EXAMPLES
    predictions = [y if noise.random() < chance else (y + 1) % CLASSES for y in labels]
    test = sum(p == y for p, y in zip(predictions, labels, strict=True)) / EXAMPLES
    size = int(1000 * float(params.get("width", 1.0))) * (2 if params.get("dendrites") else 1)
    run_id = os.environ["WANDB_RUN_ID"]
    trial_dir = Path(os.environ["DENDRISWEEP_OUT_DIR"]) / f"trial-{run_id}"
    trial_dir.mkdir(parents=True)
    time.sleep(float(os.environ.get("NOISY_TRIAL_SLEEP", "0")))
    if str(params.get("seed")) == os.environ.get("NOISY_TRIAL_FAIL_SEED"):
        print("noisy_trial: scripted crash for this seed", file=sys.stderr)
        return 1
    (trial_dir / "history.jsonl").write_text(json.dumps({"epoch": 1, "best_val_acc": val}) + "\n")
    result = {"status": "finished", "reason": "", "run_id": run_id, "best_val_acc": val, "test_acc": test,
              "params": size, "macs": 10 * size, "epochs_run": 1, "config": params,
              "test_predictions": pack(predictions), "test_labels": pack(labels),
              "data": {"source": "noisy_trial", "digest": f"noisy-{salt}", "test": EXAMPLES}}
    (trial_dir / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
