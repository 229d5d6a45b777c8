"""The deployment gate: an exported model must keep its accuracy through the chain Edge Impulse runs.

onnxruntime agreeing with PyTorch (export.check_parity) is not enough: the int8 TFLite model the
device runs is one conversion further down the road, where a model can lose its accuracy silently.
So each exported model is converted (deploy/tflite.py) and both files are scored with LiteRT on
held-out rows; `judge` then decides, from the probabilities alone. ExportError, naming the model and
the numbers, when:
- float32 TFLite scores a different accuracy than onnxruntime, or any probability differs by more
  than export.PROB_TOLERANCE;
- int8 TFLite scores more than `int8_tolerance_pp` points below float32;
- a converter or the interpreter fails (in a child process: an abort becomes the message).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dendrisweep.deploy.tflite import convert, score
from dendrisweep.errors import ExportError
from dendrisweep.export import PROB_TOLERANCE, onnx_probabilities

CALIBRATION_ROWS = 256


@dataclass(frozen=True)
class Deployment:
    """What the gate measured on the held-out rows (accuracy as a fraction, sizes in bytes)."""

    onnx_acc: float
    tflite_acc: float
    tflite_int8_acc: float | None
    tflite_max_prob_diff: float
    tflite_bytes: int
    tflite_int8_bytes: int | None
    tflite_latency_ms: float
    tflite_int8_latency_ms: float | None
    arena_bytes: int | None  # of the model the device runs: int8 when there is one
    convert_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_rows(x: np.ndarray, count: int = CALIBRATION_ROWS, seed: int = 0) -> np.ndarray:
    """A seeded random subset of training rows: every class represented whatever the file's order
    (Edge Impulse folders can be sorted by label, and a one-class calibration skews int8 ranges)."""
    pick = np.random.default_rng(seed).choice(len(x), size=min(count, len(x)), replace=False)
    return x[np.sort(pick)]


def _accuracy(probabilities: np.ndarray, y: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == y).mean())


@dataclass(frozen=True)
class Judged:
    onnx_acc: float
    tflite_acc: float
    tflite_int8_acc: float | None
    tflite_max_prob_diff: float


def judge(name: str, reference: np.ndarray, fp32: np.ndarray, int8: np.ndarray | None, y: np.ndarray,
          int8_tolerance_pp: float) -> Judged:
    """The gate's decision from the probabilities of onnxruntime (`reference`), TFLite float32 and int8
    on the same held-out rows (`y`: their labels); ExportError when the deployed model would differ."""
    onnx_acc, fp32_acc = _accuracy(reference, y), _accuracy(fp32, y)
    diff = float(np.abs(fp32 - reference).max())
    if fp32_acc != onnx_acc or diff > PROB_TOLERANCE:
        raise ExportError(f"{name}: TFLite float32 scores {fp32_acc:.4f} where onnxruntime scores "
                          f"{onnx_acc:.4f} on {len(y)} held-out samples, max |delta prob| {diff:.2e} "
                          f"(limit {PROB_TOLERANCE:g})")
    int8_acc = _accuracy(int8, y) if int8 is not None else None
    if int8_acc is not None and (fp32_acc - int8_acc) * 100 > int8_tolerance_pp:
        raise ExportError(f"{name}: TFLite int8 scores {int8_acc:.4f} on {len(y)} held-out samples, "
                          f"{(fp32_acc - int8_acc) * 100:.1f} pp below float32 ({fp32_acc:.4f}); the tolerance is "
                          f"{int8_tolerance_pp:g} pp (int8_tolerance_pp): the model a device runs would lose it")
    return Judged(onnx_acc, fp32_acc, int8_acc, diff)


def verify_deployment(onnx_path: Path, float32_path: Path, int8_path: Path | None, calibration: np.ndarray,
                      x: np.ndarray, y: np.ndarray, int8_tolerance_pp: float) -> Deployment:
    """Convert `onnx_path` to TFLite float32 (and int8 unless `int8_path` is None), score them on (x, y)."""
    reference = onnx_probabilities(onnx_path, x)
    converted = convert(onnx_path, float32_path, int8_path, calibration)
    fp32 = score(float32_path, x)
    int8 = score(int8_path, x) if int8_path is not None else None
    judged = judge(onnx_path.name, reference, fp32.probabilities, int8.probabilities if int8 else None, y,
                   int8_tolerance_pp)
    return Deployment(onnx_acc=judged.onnx_acc, tflite_acc=judged.tflite_acc, tflite_int8_acc=judged.tflite_int8_acc,
                      tflite_max_prob_diff=judged.tflite_max_prob_diff, tflite_bytes=fp32.file_bytes,
                      tflite_int8_bytes=int8.file_bytes if int8 else None, tflite_latency_ms=fp32.latency_ms,
                      tflite_int8_latency_ms=int8.latency_ms if int8 else None,
                      arena_bytes=(int8 or fp32).arena_bytes, convert_seconds=sum(converted.seconds.values()))
