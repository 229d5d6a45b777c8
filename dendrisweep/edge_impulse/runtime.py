"""The Edge Impulse block at run time: what Edge Impulse hands it (train_input.json) and what it
hands back in --out-directory.

Edge Impulse runs train_trial.py itself (the Dockerfile's ENTRYPOINT adds `--edge-impulse`), which
then writes, each verified before it exits:
- `model.onnx`: against the trained model in onnxruntime (the parity gate);
- `model.tflite` and `model_quantized_int8_io.tflite`: the chain Edge Impulse would run itself,
  through the deployment gate (deploy/gate.py). With them present Edge Impulse does not convert,
  so what the device runs is what was checked here. `convertInt8: false` in train_input.json
  skips the int8 file.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dendrisweep.errors import UsageError

MODEL_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"  # onnxruntime's static int8, for comparison
TFLITE_FILE = "model.tflite"
TFLITE_INT8_FILE = "model_quantized_int8_io.tflite"
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
                       info: Mapping[str, Any], int8_tolerance_pp: float) -> dict[str, Any]:
    """The three model files Edge Impulse picks up, each verified (ExportError otherwise), and a summary.

    The parity gate runs on the validation split; the deployment gate on the held-out test split
    (the validation split when there is none)."""
    from dendrisweep import export
    from dendrisweep.deploy.gate import calibration_rows, verify_deployment

    model_path = export.export_onnx(inference, data.shape.sample, out_dir / MODEL_FILE)
    parity = export.check_parity(trained, model_path, data.val.x, data.val.y)  # ExportError on mismatch
    calibration = calibration_rows(data.train.x)
    int8_path = export.quantize_int8(model_path, calibration, out_dir / INT8_FILE)
    held_out, split = (data.test, "test") if data.test is not None else (data.val, "validation")
    deployment = verify_deployment(model_path, out_dir / TFLITE_FILE,
                                   out_dir / TFLITE_INT8_FILE if info.get("convertInt8", True) else None,
                                   calibration, held_out.x, held_out.y, int8_tolerance_pp)
    report = {"model": MODEL_FILE, "classes": info.get("classes"), "val_acc_pytorch": parity.torch_acc,
              "val_acc_onnx": parity.onnx_acc, "val_acc_onnx_int8": export.accuracy(int8_path, data.val.x, data.val.y),
              "max_prob_diff": parity.max_prob_diff, "onnx_bytes": model_path.stat().st_size,
              "deploy_split": split, "deploy_samples": len(held_out.y),
              **{f"{split}_{key}" if key.endswith("_acc") else key: value
                 for key, value in deployment.as_dict().items()},
              **summary}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(report, indent=2, default=str))
    return report
