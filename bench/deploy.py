"""The deployment chain, measured: what Edge Impulse's conversion does to baseline and dendritic models.

On the offline spoken-keyword set (real eSpeak NG audio as Edge Impulse MFCCs), trains a baseline and
a dendritic keyword-spotting model for each seed with train_trial.py, then takes each through the
deployment pipeline (deploy/pipeline.py): the parity gate, the conversion Edge Impulse runs (onnx2tf ->
TFLite float32 and full int8), every file scored on the held-out test split, batch 1. Prints, per model
family (mean over seeds): conversion seconds, accuracy in onnxruntime / TFLite float32 / TFLite int8,
the int8 loss with a 95 % t interval, file sizes, the int8 arena estimate, and latency (onnxruntime
float32, LiteRT float32 and int8, reference kernels). Then the question of issue 11: does int8 cost a
dendritic model more than a baseline (Welch's t-test over seeds, difference with its 95 % interval)?
With --mobilenet it also takes one small MobileNetV3-Small (dendrites on every conv block) through
the same chain.

    python bench/deploy.py [--seeds 5] [--epochs 40] [--per-class 300] [--mobilenet]
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dendrisweep.data import load_dataset  # noqa: E402
from dendrisweep.data.spoken import build  # noqa: E402
from dendrisweep.deploy.pipeline import Policy, deploy  # noqa: E402
from dendrisweep.trial import checkpoint  # noqa: E402
from dendrisweep.trial.trainer import strategy_for  # noqa: E402

FAMILIES = {
    "baseline": ["--dendrites", "0"],
    "dendritic (2)": ["--switch-mode", "fixed", "--fixed-switch-num", "12", "--max-dendrites", "2",
                      "--max-dendrite-tries", "1"],
}
MOBILENET = ["--task", "mobilenet", "--width-multiplier", "0.25", "--switch-mode", "fixed", "--fixed-switch-num",
             "2", "--max-dendrites", "1", "--max-dendrite-tries", "1", "--dendrite-layers", "all", "--epochs", "4"]


def train(args: list[str], out: Path, data_dir: Path | None) -> Path:
    """One train_trial.py run (W&B offline); its trial folder."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(out), "OMP_NUM_THREADS": "1"}
    data = ["--data-directory", str(data_dir)] if data_dir else []
    subprocess.run([sys.executable, str(ROOT / "train_trial.py"), *args, *data, "--out-directory", str(out)],
                   check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    (trial,) = out.glob("trial-*")
    return trial


def measure(trial: Path, data_dir: Path | None, work: Path) -> dict[str, Any]:
    """Export, convert and score one trained model: the deployment pipeline every caller uses (measured only:
    no int8 tolerance gates it, so a lossy int8 model shows its loss here instead of failing)."""
    model, config = checkpoint.load(trial / "best_model.pt")
    data = load_dataset(data_dir, config)
    deployed = deploy(model, strategy_for(config).inference_model(model), data, work, Policy.measure())
    result = json.loads((trial / "result.json").read_text())
    return {"dendrites": result["dendrites_added"], "params": result["params"], "samples": deployed.samples,
            "convert_s": deployed.convert_seconds, "onnx_acc": deployed.onnx_acc, "fp32_acc": deployed.tflite_acc,
            "int8_acc": deployed.tflite_int8_acc, "fp32_diff": deployed.tflite_max_prob_diff,
            "onnx_bytes": deployed.onnx_bytes, "fp32_bytes": deployed.tflite_bytes,
            "int8_bytes": deployed.tflite_int8_bytes, "arena": deployed.arena_bytes,
            "ort_ms": deployed.onnx_latency_ms, "fp32_ms": deployed.tflite_latency_ms,
            "int8_ms": deployed.tflite_int8_latency_ms}


def interval(values: list[float]) -> str:
    """mean [95 % t interval]."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:+.2f} (1 run)"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def report(rows: dict[str, list[dict[str, Any]]]) -> None:
    print(f"{'model':<16}{'seeds':>6}{'dendr':>6}{'params':>8}{'conv s':>8}{'onnx':>8}{'tfl fp32':>9}{'tfl int8':>9}"
          f"{'int8 loss pp (95% CI)':>26}{'fp32 B':>8}{'int8 B':>8}{'arena B':>8}{'ort ms':>8}{'fp32 ms':>8}"
          f"{'int8 ms':>8}")
    for name, runs in rows.items():
        def mean(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.fmean(r[key] for r in runs)

        loss = interval([(r["fp32_acc"] - r["int8_acc"]) * 100 for r in runs])
        print(f"{name:<16}{len(runs):>6}{mean('dendrites'):>6.1f}{mean('params'):>8.0f}{mean('convert_s'):>8.1f}"
              f"{mean('onnx_acc'):>8.4f}{mean('fp32_acc'):>9.4f}{mean('int8_acc'):>9.4f}{loss:>26}"
              f"{mean('fp32_bytes'):>8.0f}{mean('int8_bytes'):>8.0f}{mean('arena'):>8.0f}{mean('ort_ms'):>8.3f}"
              f"{mean('fp32_ms'):>8.3f}{mean('int8_ms'):>8.3f}")
    print(f"max |TFLite fp32 - onnxruntime| probability over all runs: "
          f"{max(r['fp32_diff'] for runs in rows.values() for r in runs):.1e}; test split "
          f"{next(iter(rows.values()))[0]['samples']} samples")


def int8_question(rows: dict[str, list[dict[str, Any]]]) -> None:
    base, dend = ([(r["fp32_acc"] - r["int8_acc"]) * 100 for r in rows[k]] for k in FAMILIES)
    if len(base) < 2:
        return
    test = stats.ttest_ind(dend, base, equal_var=False)
    low, high = test.confidence_interval(0.95)
    print(f"int8 loss, dendritic minus baseline: {statistics.fmean(dend) - statistics.fmean(base):+.2f} pp "
          f"[95% CI {low:+.2f}, {high:+.2f}], Welch p = {test.pvalue:.2f}, {len(base)} seeds each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--mobilenet", action="store_true", help="also one small MobileNetV3-Small")
    opts = parser.parse_args()
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "spoken"
        build(data_dir, seed=0, per_class=opts.per_class)
        jobs = [(name, seed) for seed in range(opts.seeds) for name in FAMILIES]

        def run(job: tuple[str, int]) -> tuple[str, dict[str, Any]]:
            name, seed = job
            out = Path(tmp) / f"{name.split()[0]}-{seed}"
            trial = train([*FAMILIES[name], "--seed", str(seed), "--epochs", str(opts.epochs)], out, data_dir)
            return name, measure(trial, data_dir, out)

        with ThreadPoolExecutor(max_workers=2) as pool:  # one trial per core
            for name, row in pool.map(run, jobs):
                rows[name].append(row)
                print(f"  {name} seed {len(rows[name]) - 1}: int8 {row['int8_acc']:.4f} fp32 {row['fp32_acc']:.4f}",
                      flush=True)
        if opts.mobilenet:
            out = Path(tmp) / "mobilenet"
            rows["mobilenet (digits)"].append(measure(train(MOBILENET, out, None), None, out))
    print(f"\nspoken keywords ({opts.per_class} per class, 6 classes), {opts.epochs}-epoch cap, batch 1:")
    report(rows)
    int8_question(rows)


if __name__ == "__main__":
    main()
