"""Regenerate the chosen model of a sweep and its baseline, export both, and prove the exported files.

The chosen pair is the verdict's (the best config of each sweep by replicate mean) when the sweep has
one, else the best trial of each sweep.
1. best_config.yaml (usable as `train_trial.py --config best_config.yaml`) and baseline_config.yaml;
2. both retrained by train_trial.py itself (in parallel) with the recorded seed on the same data;
3. exported to ONNX (PAI's final-model preparation, eval mode, softmax, opset 17, input `input`
   with a dynamic batch axis, output `output`);
4. the exported files scored by onnxruntime and compared with the trained PyTorch models: an
   accuracy difference or a probability off by more than 1e-4 fails the command;
5. int8 copies (onnxruntime static quantization, calibrated on training data) scored too;
6. the deployment gate: each ONNX file converted the way Edge Impulse does (TFLite float32 and full
   int8) and scored with LiteRT on the held-out split; float32 must match onnxruntime and int8 stay
   within `int8_tolerance_pp` of float32, or the command fails;
7. comparison.json and comparison.md side by side, with versions, seed and data hash.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from tqdm import tqdm

from analysis.rank import best, row_config
from dendrisweep import export
from dendrisweep.contract import FINISHED, MODEL_FILE, new_run_id
from dendrisweep.data import load_dataset
from dendrisweep.deploy.gate import calibration_rows, verify_deployment
from dendrisweep.errors import UsageError
from dendrisweep.sweep.launch import Outcome, TrialFiles, launch
from dendrisweep.sweep.spec import DEFAULT_COMMAND
from dendrisweep.trial import checkpoint
from dendrisweep.trial.trainer import strategy_for

TRAIN_TRIAL = Path(__file__).resolve().parents[1] / "train_trial.py"
REPRODUCE_PP = 0.5
COMPARED = ("val_acc", "test_acc", "onnx_test_acc", "onnx_int8_test_acc", "tflite_test_acc", "tflite_int8_test_acc",
            "params", "macs", "onnx_bytes", "onnx_int8_bytes", "tflite_bytes", "tflite_int8_bytes", "arena_bytes",
            "latency_ms", "int8_latency_ms", "tflite_int8_latency_ms", "dendrites_added", "max_prob_diff")


@dataclass(frozen=True)
class Retrained:
    name: str
    config: dict[str, Any]
    trial_dir: Path
    result: dict[str, Any]


def _data_directory(row: pd.Series) -> Path | None:
    source = row.get("data_source")
    return Path(source) if isinstance(source, str) and Path(source).is_dir() else None


def retrain(jobs: Mapping[str, tuple[dict[str, Any], Path]], out_dir: Path,
            data_dir: Path | None) -> dict[str, Retrained]:
    """Train each (config, config file) with train_trial.py, all at once, launched exactly as the agent
    launches a sweep's trials (sweep/launch.py: the config in the file `wandb agent` would write, the
    same environment and trial folder), showing epochs as they complete."""
    threads = max(1, (os.cpu_count() or 1) // len(jobs))
    command = [*DEFAULT_COMMAND[:3], *(["--data-directory", str(data_dir)] if data_dir else [])]
    total = sum(config["epochs"] for config, _ in jobs.values())
    lock, stop = threading.Lock(), threading.Event()
    with tqdm(total=total, desc="retraining " + " + ".join(jobs), unit="epoch") as bar:
        def progress(row: dict[str, Any]) -> bool:
            with lock:
                bar.update(1)
            return False  # never prune

        def train(name: str) -> tuple[TrialFiles, Outcome]:
            config, config_file = jobs[name]
            config_file.write_text(yaml.safe_dump(config, sort_keys=False))  # for `train_trial.py --config`
            files = TrialFiles((out_dir / name).resolve(), "regenerate", new_run_id())
            return files, launch(files, command, str(TRAIN_TRIAL), config, group="regenerate", threads=threads,
                                 in_sweep=False, on_row=progress, stop=stop)

        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            launched = dict(zip(jobs, pool.map(train, jobs), strict=True))
    retrained = {}
    for name, (files, outcome) in launched.items():
        if outcome.status != FINISHED:
            raise UsageError(f"retraining the {name} model failed ({outcome.reason or outcome.status}); see "
                             f"{files.stderr}")
        retrained[name] = Retrained(name, jobs[name][0], files.trial_dir, outcome.result)
    return retrained


def export_and_score(retrained: Retrained, out_dir: Path, data_dir: Path | None) -> dict[str, Any]:
    """Export one retrained model and measure what the comparison reports."""
    model, config = checkpoint.load(retrained.trial_dir / MODEL_FILE)
    data = load_dataset(data_dir, config)
    held_out = data.test if data.test is not None else data.val
    inference = strategy_for(config).inference_model(model)
    onnx_path = export.export_onnx(inference, data.shape.sample, out_dir / f"{retrained.name}.onnx")
    export.check_parity(model, onnx_path, data.val.x, data.val.y)
    parity = export.check_parity(model, onnx_path, held_out.x, held_out.y)
    calibration = calibration_rows(data.train.x)
    int8_path = export.quantize_int8(onnx_path, calibration, out_dir / f"{retrained.name}.int8.onnx")
    deployment = verify_deployment(onnx_path, out_dir / f"{retrained.name}.tflite",
                                   out_dir / f"{retrained.name}_quantized_int8_io.tflite", calibration,
                                   held_out.x, held_out.y, config["int8_tolerance_pp"])
    result = retrained.result
    return {
        "val_acc": result["best_val_acc"], "test_acc": result["test_acc"],
        "onnx_test_acc": parity.onnx_acc, "onnx_int8_test_acc": export.accuracy(int8_path, held_out.x, held_out.y),
        "params": result["params"], "macs": result["macs"], "dendrites_added": result["dendrites_added"],
        "onnx_bytes": onnx_path.stat().st_size, "onnx_int8_bytes": int8_path.stat().st_size,
        "latency_ms": export.latency_ms(onnx_path, held_out.x[0]),
        "int8_latency_ms": export.latency_ms(int8_path, held_out.x[0]),
        "max_prob_diff": parity.max_prob_diff, "onnx": onnx_path.name, "onnx_int8": int8_path.name,
        "tflite_test_acc": deployment.tflite_acc, "tflite_int8_test_acc": deployment.tflite_int8_acc,
        "tflite_bytes": deployment.tflite_bytes, "tflite_int8_bytes": deployment.tflite_int8_bytes,
        "tflite_int8_latency_ms": deployment.tflite_int8_latency_ms, "arena_bytes": deployment.arena_bytes,
        "tflite_max_prob_diff": deployment.tflite_max_prob_diff, "int8_tolerance_pp": config["int8_tolerance_pp"],
        "seed": config["seed"], "data_digest": data.digest, "trial_dir": str(retrained.trial_dir),
    }


def _versions() -> dict[str, str]:
    return {p: metadata.version(p) for p in ("torch", "perforatedai", "onnx", "onnxruntime", "wandb", "optuna",
                                             "tensorflow", "onnx2tf", "ai-edge-litert")}


def _choose(df: pd.DataFrame, maximize: bool, baseline: pd.DataFrame | None,
            verdict: Mapping[str, Any] | None) -> tuple[pd.Series, dict[str, Any], str]:
    """(the dendritic trial's row, the baseline config, where the baseline came from): the verdict's choice
    (the best config by replicate mean) when there is one, else the best sweep trial of each."""
    if verdict is not None:
        chosen, base = verdict["dendritic"], verdict["baseline"]
        rows = df[df["run_id"] == chosen["run_id"]]
        if rows.empty:
            raise UsageError(f"the verdict chose run {chosen['run_id']}, which is not in this sweep's study")
        base_config = row_config(pd.Series({**base["config"], "seed": base["sweep_seed"]}))
        return rows.iloc[0], base_config, f"the verdict's best baseline ({base['label']}, best replicate mean)"
    top = best(df, maximize)
    if top is None:
        raise UsageError("no finished trial to regenerate")
    base_row = best(baseline, True) if baseline is not None else None
    if base_row is not None:
        return top, row_config(base_row), "best baseline trial"
    return top, {**row_config(top), "dendrites": False}, "best config with dendrites off"


def regenerate(df: pd.DataFrame, maximize: bool, out_dir: Path, baseline: pd.DataFrame | None = None,
               verdict: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run steps 1-6 for the chosen trial of `df` (the verdict's, else the best); returns what
    comparison.json holds."""
    top, base_config, base_source = _choose(df, maximize, baseline, verdict)
    config = row_config(top)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = _data_directory(top)
    retrained = retrain({"dendritic": (config, out_dir / "best_config.yaml"),
                         "baseline": (base_config, out_dir / "baseline_config.yaml")}, out_dir, data_dir)
    models = {name: export_and_score(r, out_dir, data_dir) for name, r in retrained.items()}
    recorded, regenerated = float(top["best_val_acc"]), float(models["dendritic"]["val_acc"])
    recorded_digest = top["data_digest"] if isinstance(top["data_digest"], str) else None
    comparison = {
        **models,
        "reproduction": {"trial": None if pd.isna(top["trial"]) else int(top["trial"]), "run_id": top["run_id"],
                         "recorded_val_acc": recorded, "regenerated_val_acc": regenerated,
                         "difference_pp": abs(regenerated - recorded) * 100,
                         "within_tolerance": abs(regenerated - recorded) * 100 <= REPRODUCE_PP,
                         "recorded_data_digest": recorded_digest,
                         "data_digest_matches": recorded_digest in (None, models["dendritic"]["data_digest"])},
        "chosen_by": "the verdict (best replicate mean)" if verdict is not None else "the best sweep trial",
        "baseline_source": base_source,
        "versions": _versions(),
    }
    (out_dir / "comparison.json").write_text(json.dumps(comparison, indent=2, default=str))
    (out_dir / "comparison.md").write_text(comparison_markdown(comparison))
    return comparison


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return str(value)


def comparison_markdown(comparison: Mapping[str, Any]) -> str:
    dendritic, baseline, repro = comparison["dendritic"], comparison["baseline"], comparison["reproduction"]
    lines = ["# Dendritic model vs baseline", "",
             "| | dendritic | baseline |", "|---|---|---|"]
    for key in COMPARED:
        lines.append(f"| {key} | {_cell(dendritic[key])} | {_cell(baseline[key])} |")
    verdict = ("reproduced" if repro["within_tolerance"] else
               f"**NOT REPRODUCED: differs by more than {REPRODUCE_PP} pp**")
    lines += ["", f"Dendritic: sweep trial {repro['trial']} (run {repro['run_id']}, chosen by "
              f"{comparison['chosen_by']}): recorded val accuracy "
              f"{repro['recorded_val_acc']:.4f}, regenerated {repro['regenerated_val_acc']:.4f} "
              f"({repro['difference_pp']:.2f} pp): {verdict}.",
              f"Baseline: {comparison['baseline_source']}. Seed {dendritic['seed']}, data digest "
              f"{dendritic['data_digest']}{'' if repro['data_digest_matches'] else ' (**differs from the sweep**)'}.",
              "",
              "Both ONNX files were scored by onnxruntime against the trained PyTorch models (parity gate: same "
              f"accuracy, max |delta prob| <= {export.PROB_TOLERANCE:g}; dendritic {dendritic['max_prob_diff']:.1e}, "
              f"baseline {baseline['max_prob_diff']:.1e}). Deployment gate: each ONNX file converted as Edge "
              "Impulse converts it (onnx2tf -> TFLite float32 and full int8, int8 input/output) and scored with "
              f"LiteRT's reference kernels: float32 matches onnxruntime (max |delta prob| dendritic "
              f"{dendritic['tflite_max_prob_diff']:.1e}, baseline {baseline['tflite_max_prob_diff']:.1e}), int8 "
              f"within {dendritic['int8_tolerance_pp']:g} pp of float32. arena_bytes: peak activation memory of the "
              "int8 model (a RAM estimate). Latency: batch 1, median (onnxruntime; LiteRT reference kernels "
              "for tflite_int8_latency_ms).", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in comparison["versions"].items()), ""]
    return "\n".join(lines)
