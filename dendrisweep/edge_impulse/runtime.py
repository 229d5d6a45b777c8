"""The Edge Impulse block at run time: what Edge Impulse hands it (train_input.json) and what it
hands back in --out-directory.

Edge Impulse runs train_trial.py itself (the Dockerfile's ENTRYPOINT adds `--edge-impulse`), which
then deploys the best model through the deployment pipeline (deploy/pipeline.py) into the folder:
`model.onnx` (proven against the trained model in onnxruntime), `model.tflite` and
`model_quantized_int8_io.tflite` (the chain Edge Impulse would run itself, proven by the deployment
gate). With the TFLite files present Edge Impulse does not convert, so what the device runs is what
was checked here. `convertInt8: false` in train_input.json skips the int8 file (`Policy.block`).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dendrisweep.contract import TrialRecord
from dendrisweep.deploy.pipeline import Deployed, Policy, deploy
from dendrisweep.errors import UsageError

SUMMARY_FILE = "training_summary.json"


def read_info_file(path: Path | None) -> dict[str, Any]:
    """Edge Impulse's train_input.json (class names, mode); this block only does classification."""
    if path is None or not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"info file {path}: not valid JSON ({exc.msg})") from None
    if info.get("mode", "classification") != "classification":
        raise UsageError(f"info file {path}: mode {info['mode']!r}; this block trains classifiers only")
    return info


def write_block_output(out_dir: Path, trained: Any, inference: Any, data: Any, record: TrialRecord,
                       info: Mapping[str, Any], policy: Policy) -> Deployed:
    """The model files Edge Impulse picks up (`policy`: Policy.block), each proven (ExportError otherwise), and
    training_summary.json: the deployment's measurements beside the trial's record; returns them (the
    trial records the deployed model's metrics from them)."""
    deployed = deploy(trained, inference, data, out_dir, policy)
    summary = {"model": policy.onnx, "classes": info.get("classes"), **deployed.as_dict(), **record.summary()}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    print(summary_table(summary), flush=True)  # the last thing in the log Studio shows
    return deployed


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.2f} %"


def summary_table(summary: Mapping[str, Any]) -> str:
    """What the block hands Edge Impulse, as the log's closing table (one run, not a comparison)."""
    rows = [("accuracy, PyTorch", _pct(summary["torch_acc"])),
            ("accuracy, ONNX (onnxruntime)", _pct(summary["onnx_acc"])),
            ("accuracy, TFLite float32", _pct(summary["tflite_acc"])),
            ("accuracy, TFLite int8", _pct(summary["tflite_int8_acc"])),
            ("flash, int8 model (bytes)", summary["tflite_int8_bytes"] or "-"),
            ("flash, float32 model (bytes)", summary["tflite_bytes"]),
            ("RAM, tensor arena estimate (bytes)", summary["arena_bytes"] or "-"),
            ("latency per sample, int8 (ms)", "-" if summary["tflite_int8_latency_ms"] is None
             else f"{summary['tflite_int8_latency_ms']:.3f}"),
            ("parameters", summary.get("params")), ("dendrites added", summary.get("dendrites_added"))]
    width = max(len(name) for name, _ in rows)
    lines = [f"Deployed model, {summary['split']} split ({summary['samples']} samples):"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)
