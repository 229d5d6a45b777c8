"""Regenerate the chosen model of a sweep and its baseline, export both, and prove the exported files.

The chosen pair is the verdict's (the best config of each sweep by replicate mean) when the sweep has
one, else the best trial of each sweep. This module chooses and writes the comparison; the library
runs (dendrisweep.sweep.retrain, dendrisweep.deploy).
1. best_config.yaml (usable as `train_trial.py --config best_config.yaml`) and baseline_config.yaml;
2. both retrained by train_trial.py itself (in parallel) with the recorded seed on the same data;
3. each deployed by its own trial as it finishes (`train_trial.py --deploy-as NAME`: the model it trained,
   on the data it loaded, never reloaded here), through the deployment pipeline: ONNX (PAI's
   final-model preparation, eval mode, softmax, opset 17, input `input` with a dynamic batch axis,
   output `output`) scored by onnxruntime against the trained PyTorch model (an accuracy difference or
   a probability off by more than 1e-4 fails the command); an onnxruntime int8 copy; TFLite float32
   and full int8 converted the way Edge Impulse does and scored with LiteRT on the held-out split
   (float32 must match onnxruntime and int8 stay within `int8_tolerance_pp` of float32, or the command
   fails); the files are copied here;
4. comparison.json and comparison.md side by side, with versions, seed and data hash.
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.rank import best, recorded_data, row_config
from dendrisweep import MODEL_FILE, RESULT_FILE, ExportError, TrialRecord, UsageError, resolve_data
from dendrisweep.deploy import DEPLOYED_DIR, Deployed, Policy
from dendrisweep.sweep import Launcher, retrain
from dendrisweep.trial import deploy_saved
from dendrisweep.verdict import Verdict

REPRODUCE_PP = 0.5
COMPARED = ("best_val_acc", "test_acc", "onnx_acc", "onnx_int8_acc", "tflite_acc", "tflite_int8_acc", "params",
            "macs", "onnx_bytes", "onnx_int8_bytes", "tflite_bytes", "tflite_int8_bytes", "arena_bytes",
            "onnx_latency_ms", "onnx_int8_latency_ms", "tflite_int8_latency_ms", "dendrites_added", "max_prob_diff")


def retrained_model(record: TrialRecord, out_dir: Path) -> dict[str, Any]:
    """What the comparison reports of a retrained model: the deployment its trial made as it finished
    (train_trial.py --deploy-as), its files copied into `out_dir`. A gate that failed there (recorded as
    the trial's deploy_error) is this command's ExportError."""
    if record.deploy_error:
        raise ExportError(record.deploy_error.removeprefix("ExportError: "))
    assert record.trial_dir is not None
    folder = Path(record.trial_dir) / DEPLOYED_DIR
    deployed = Deployed.load(folder)
    for file in deployed.files.values():
        shutil.copyfile(folder / file, out_dir / file)
    return _compared(record, deployed, record.data.digest)


def downloaded_model(record: TrialRecord, out_dir: Path, data_dir: Path | None) -> dict[str, Any]:
    """What the comparison reports of a run's own model, downloaded (it exists only as its file): deployed
    here, on `data_dir`, as a retrained dendritic model would be."""
    assert record.trial_dir is not None
    policy = Policy.regenerate("dendritic", record.config["int8_tolerance_pp"])
    deployed, data = deploy_saved(Path(record.trial_dir) / MODEL_FILE, data_dir, out_dir, policy)
    return _compared(record, deployed, data.digest)


def _compared(record: TrialRecord, deployed: Deployed, data_digest: str | None) -> dict[str, Any]:
    return {"best_val_acc": record.best_val_acc, "test_acc": record.test_acc, "params": record.params,
            "macs": record.macs, "dendrites_added": record.dendrites_added, **deployed.as_dict(),
            "seed": record.config["seed"], "data_digest": data_digest, "trial_dir": record.trial_dir}


def _versions() -> dict[str, str]:
    return {p: metadata.version(p) for p in ("torch", "perforatedai", "onnx", "onnxruntime", "wandb", "optuna",
                                             "tensorflow", "onnx2tf", "ai-edge-litert")}


def _choose(df: pd.DataFrame, maximize: bool, baseline: pd.DataFrame | None,
            verdict: Verdict | None) -> tuple[pd.Series, dict[str, Any], str]:
    """(the dendritic trial's row, the baseline config, where the baseline came from): the verdict's choice
    (the best config by replicate mean) when there is one, else the best sweep trial of each."""
    if verdict is not None:
        chosen, base = verdict.dendritic, verdict.baseline
        rows = df[df["run_id"] == chosen.run_id]
        if rows.empty:
            raise UsageError(f"the verdict chose run {chosen.run_id}, which is not in this sweep's study")
        base_config = row_config(pd.Series({**base.config, "seed": base.sweep_seed}))
        return rows.iloc[0], base_config, f"the verdict's best baseline ({base.label}, best replicate mean)"
    top = best(df, maximize)
    if top is None:
        raise UsageError("no finished trial to regenerate")
    base_row = best(baseline, True) if baseline is not None else None
    if base_row is not None:
        return top, row_config(base_row), "best baseline trial"
    return top, {**row_config(top), "dendrites": False}, "best config with dendrites off"


def _downloaded(folder: Path) -> TrialRecord:
    """The record a downloaded model came with, pointing at the folder it was downloaded to."""
    record = TrialRecord.from_json(json.loads((folder / RESULT_FILE).read_text()))
    return replace(record, trial_dir=str(folder))


def regenerate(df: pd.DataFrame, maximize: bool, out_dir: Path, baseline: pd.DataFrame | None = None,
               verdict: Verdict | None = None, *, project: str, data_dir: Path | None = None,
               fetch: Callable[[str, Path], Path | None] | None = None,
               launcher: Launcher | None = None) -> dict[str, Any]:
    """Run steps 1-6 for the chosen trial of `df` (the verdict's, else the best) on the data it trained on
    (`data_dir`, else its recorded folder or the built-in data; checked by digest before anything trains);
    returns what comparison.json holds. `fetch(run_id, folder)` may download the chosen run's own model
    (a W&B artifact): then it is deployed as it is and proven to score what its run recorded on test. The
    retraining runs through `launcher` (default: processes on this machine)."""
    top, base_config, base_source = _choose(df, maximize, baseline, verdict)
    config = row_config(top)
    recorded_source, recorded_digest = recorded_data(top)
    data_dir = resolve_data(data_dir, recorded_source, recorded_digest, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    configs = {"dendritic": config, "baseline": base_config}
    for name, filename in (("dendritic", "best_config.yaml"), ("baseline", "baseline_config.yaml")):
        (out_dir / filename).write_text(yaml.safe_dump(configs[name], sort_keys=False))  # train_trial.py --config
    folder = fetch(str(top["run_id"]), out_dir / "downloaded") if fetch is not None else None
    if folder is not None:
        records = {"dendritic": _downloaded(folder),
                   **retrain({"baseline": base_config}, out_dir, data_dir, project, launcher, deploy=True)}
    else:
        records = retrain(configs, out_dir, data_dir, project, launcher, deploy=True)
    models = {name: downloaded_model(records[name], out_dir, data_dir) if folder is not None and name == "dendritic"
              else retrained_model(records[name], out_dir) for name in configs}
    comparison = {
        **models,
        "reproduction": {"trial": None if pd.isna(top["trial"]) else int(top["trial"]), "run_id": top["run_id"],
                         **_reproduction(top, models["dendritic"], downloaded=folder is not None),
                         "recorded_data_digest": recorded_digest,
                         "data_digest_matches": recorded_digest in (None, models["dendritic"]["data_digest"])},
        "chosen_by": "the verdict (best replicate mean)" if verdict is not None else "the best sweep trial",
        "baseline_source": base_source,
        "versions": _versions(),
    }
    (out_dir / "comparison.json").write_text(json.dumps(comparison, indent=2, default=str))
    (out_dir / "comparison.md").write_text(comparison_markdown(comparison))
    return comparison


def _reproduction(top: pd.Series, model: Mapping[str, Any], downloaded: bool) -> dict[str, Any]:
    """Retrained: the best model's val accuracy against the sweep's, within REPRODUCE_PP. Downloaded (the
    run's own model): its held-out accuracy here against the run's recorded test accuracy, the same."""
    key, measured = ("test_acc", model["torch_acc"]) if downloaded else ("best_val_acc", model["best_val_acc"])
    recorded, tolerance = float(top[key]), 1e-6 if downloaded else REPRODUCE_PP
    return {"model": "downloaded from W&B (the run's own)" if downloaded else "retrained", "compared": key,
            "recorded": recorded, "regenerated": float(measured), "difference_pp": abs(measured - recorded) * 100,
            "tolerance_pp": tolerance, "within_tolerance": abs(measured - recorded) * 100 <= tolerance}


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
               f"**NOT REPRODUCED: differs by more than {repro['tolerance_pp']:g} pp**")
    lines += ["", f"Dendritic: sweep trial {repro['trial']} (run {repro['run_id']}, chosen by "
              f"{comparison['chosen_by']}; {repro['model']}): recorded {repro['compared']} "
              f"{repro['recorded']:.4f}, regenerated {repro['regenerated']:.4f} "
              f"({repro['difference_pp']:.2f} pp): {verdict}.",
              f"Baseline: {comparison['baseline_source']}. Seed {dendritic['seed']}, data digest "
              f"{dendritic['data_digest']}{'' if repro['data_digest_matches'] else ' (**differs from the sweep**)'}.",
              "",
              "Both ONNX files were scored by onnxruntime against the trained PyTorch models (parity gate: same "
              f"accuracy, max |delta prob| <= 1e-4; dendritic {dendritic['max_prob_diff']:.1e}, "
              f"baseline {baseline['max_prob_diff']:.1e}). Deployment gate: each ONNX file converted as Edge "
              "Impulse converts it (onnx2tf -> TFLite float32 and full int8, int8 input/output) and scored with "
              f"LiteRT's reference kernels: float32 matches onnxruntime (max |delta prob| dendritic "
              f"{dendritic['tflite_max_prob_diff']:.1e}, baseline {baseline['tflite_max_prob_diff']:.1e}), int8 "
              f"within {dendritic['int8_tolerance_pp']:g} pp of float32. arena_bytes: peak activation memory of the "
              f"int8 model (a RAM estimate). Accuracies on the held-out {dendritic['split']} split "
              f"({dendritic['samples']} samples). Latency: batch 1, median (onnxruntime; LiteRT reference "
              "kernels for tflite_int8_latency_ms).", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in comparison["versions"].items()), ""]
    return "\n".join(lines)
