"""The Edge Impulse block at run time: what Edge Impulse hands it (train_input.json) and what it
hands back in --out-directory.

Edge Impulse runs train_trial.py itself (the Dockerfile's ENTRYPOINT adds `--edge-impulse`), which
then writes `model.onnx` into --out-directory, verified against the trained model before it exits.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dendrisweep.errors import UsageError

MODEL_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
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


def write_block_output(out_dir: Path, trained: Any, inference: Any, data: Any, summary: Mapping[str, Any],
                       info: Mapping[str, Any]) -> dict[str, Any]:
    """model.onnx (checked against the trained model on the validation split), its int8 copy, a summary."""
    from dendrisweep import export

    model_path = export.export_onnx(inference, data.shape.sample, out_dir / MODEL_FILE)
    parity = export.check_parity(trained, model_path, data.val.x, data.val.y)  # ExportError on mismatch
    int8_path = export.quantize_int8(model_path, data.train.x[:256], out_dir / INT8_FILE)
    report = {"model": MODEL_FILE, "classes": info.get("classes"), "val_acc_pytorch": parity.torch_acc,
              "val_acc_onnx": parity.onnx_acc, "val_acc_onnx_int8": export.accuracy(int8_path, data.val.x, data.val.y),
              "max_prob_diff": parity.max_prob_diff, "onnx_bytes": model_path.stat().st_size, **summary}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(report, indent=2, default=str))
    return report
