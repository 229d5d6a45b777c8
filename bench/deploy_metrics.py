"""What `deploy_metrics` costs a sweep: seconds per trial with and without measuring the deployed model.

Runs small keyword-spotting trials with train_trial.py (W&B offline, built-in data, one dendrite on a fixed
schedule), alternating `--deploy-metrics 0` and `1` so the machine's drift falls on both, and prints the
median seconds per trial as a sweep pays them (the process, start-up included) for each, wall and CPU (the
trial's and its converter processes': steadier than wall time on a shared machine), their ratio, and the
measurement's own wall seconds (`deploy_seconds`: ONNX export and parity, the TFLite float32 and int8
conversions, LiteRT scoring), next to the int8 numbers it reports.

    python bench/deploy_metrics.py [--repeats 3] [--epochs 6]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ["--switch-mode", "fixed", "--fixed-switch-num", "2", "--max-dendrites", "1", "--max-dendrite-tries", "1"]


def _cpu_seconds() -> float:
    """CPU time of the finished children, theirs included (the converters are the trial's children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: list[str], out: Path) -> tuple[float, float, dict[str, Any]]:
    """One train_trial.py run: its wall and CPU seconds as the caller saw them, and its result.json."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(out)}
    started, cpu = time.perf_counter(), _cpu_seconds()
    subprocess.run([sys.executable, str(ROOT / "train_trial.py"), *args, "--out-directory", str(out)],
                   check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    (trial,) = out.glob("trial-*")
    return wall, cpu, json.loads((trial / "result.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="trials on each side")
    parser.add_argument("--epochs", type=int, default=6)
    opts = parser.parse_args()
    seconds: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(opts.repeats):
            for on in (False, True):
                wall, cpu, result = run([*TRIAL, "--epochs", str(opts.epochs), "--seed", str(repeat),
                                    "--deploy-metrics", str(int(on))], Path(tmp) / f"{repeat}-{int(on)}")
                assert result["status"] == "finished" and ("tflite_int8_bytes" in result) == on, result
                seconds[on].append((wall, cpu))
                if on:
                    measured.append(result)
    off_wall, off_cpu = (statistics.median(column) for column in zip(*seconds[False], strict=True))
    on_wall, on_cpu = (statistics.median(column) for column in zip(*seconds[True], strict=True))
    deploy = statistics.median(r["deploy_seconds"] for r in measured)
    print(f"{opts.repeats} trials each side, {opts.epochs} epochs; median seconds per trial process")
    print(f"{'':<22}{'wall s':>9}{'CPU s':>9}")
    print(f"{'deploy_metrics off':<22}{off_wall:>9.1f}{off_cpu:>9.1f}")
    print(f"{'deploy_metrics on':<22}{on_wall:>9.1f}{on_cpu:>9.1f}")
    print(f"{'ratio on / off':<22}{on_wall / off_wall:>8.2f}x{on_cpu / off_cpu:>8.2f}x")
    print(f"{'extra per trial':<22}{on_wall - off_wall:>9.1f}{on_cpu - off_cpu:>9.1f}")
    print(f"{'deploy_seconds':<22}{deploy:>9.1f}{'':>9}  (the measurement's own wall time)")
    for r in measured:
        print(f"  seed {r['config']['seed']}: int8 {r['tflite_int8_bytes']} B flash, arena {r['arena_bytes']} B, "
              f"{r['tflite_int8_latency_ms']:.3f} ms, int8 acc {r['tflite_int8_acc']:.4f} "
              f"(test_acc {r['test_acc']:.4f}), deploy {r['deploy_seconds']:.1f} s")


if __name__ == "__main__":
    main()
