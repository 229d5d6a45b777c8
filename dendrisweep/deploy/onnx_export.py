"""ONNX export that provably matches training: softmax output, parity gate, int8, latency.

An exported file is only trusted once it is shown to behave like the trained model. Here the
exported file itself is scored with onnxruntime on held-out data and compared with the trained
PyTorch model (not with PAI's "final" model, which can silently differ: see pai.inference_model);
any difference in accuracy or a probability off by more than 1e-4 is an ExportError. The first step
of the deployment pipeline (pipeline.py); the TFLite chain and its gate follow (tflite.py, gate.py).
"""
from __future__ import annotations

import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dendrisweep.deploy.guard import check_convertible
from dendrisweep.errors import ExportError

OPSET = 17
PROB_TOLERANCE = 1e-4


def export_onnx(model: nn.Module, sample: tuple[int, ...], path: Path, softmax: bool = True) -> Path:
    """Eval-mode export with a softmax output, input `input` (batch 1, dynamic batch axis), output `output`;
    a graph the deployment converters would mishandle is an ExportError (deploy/guard.py).

    `sample` is one input's shape without the batch axis: (650,) for MFCC features, (3, H, W) for images.
    """
    net = nn.Sequential(model, nn.Softmax(dim=-1)) if softmax else model
    net.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is the one that handles PAI's modules (the dynamo exporter fails
        # on their dynamic batch axis); PyTorch marks it legacy.
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, *sample),), str(path), dynamo=False, opset_version=OPSET,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    check_convertible(path)
    return path


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    """What a deployment sees: the exported file's outputs for a batch of flat feature rows."""
    session = _session(path)
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32, copy=False)})[0]


def torch_probabilities(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(x)), dim=-1).numpy()


def accuracy(probabilities: np.ndarray, y: np.ndarray) -> float:
    """The share of rows whose most probable class is the label."""
    return float((probabilities.argmax(axis=1) == y).mean())


def check_parity(trained: nn.Module, onnx_path: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Score the exported file against the trained model on (x, y): (PyTorch accuracy, onnxruntime accuracy,
    max |delta prob|); ExportError when the accuracies differ, a probability is off by more than
    PROB_TOLERANCE or the file's outputs do not sum to 1."""
    expected, got = torch_probabilities(trained, x), onnx_probabilities(onnx_path, x)
    torch_acc, onnx_acc = accuracy(expected, y), accuracy(got, y)
    max_prob_diff = float(np.abs(expected - got).max())
    rows_sum_to_one = bool(np.allclose(got.sum(axis=1), 1.0, atol=1e-4))
    if torch_acc != onnx_acc or max_prob_diff > PROB_TOLERANCE or not rows_sum_to_one:
        raise ExportError(f"{onnx_path.name} does not match the trained model: accuracy {onnx_acc:.4f} "
                          f"(PyTorch {torch_acc:.4f}), max |delta prob| {max_prob_diff:.2e} "
                          f"(limit {PROB_TOLERANCE:g}), outputs sum to 1: {rows_sum_to_one}")
    return torch_acc, onnx_acc, max_prob_diff


def quantize_int8(onnx_path: Path, calibration: np.ndarray, out_path: Path) -> Path:
    """onnxruntime static int8 quantization (QDQ), calibrated on a slice of the training data, after
    onnxruntime's recommended pre-processing (shape inference and graph optimisation)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._rows = iter(calibration.astype(np.float32, copy=False))

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self._rows, None)
            return None if row is None else {"input": row[None, :]}

    prepared = out_path.with_suffix(".pre.onnx")
    quant_pre_process(str(onnx_path), str(prepared))
    try:
        quantize_static(str(prepared), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
    return out_path


def latency_ms(onnx_path: Path, sample: np.ndarray, repeats: int = 200) -> float:
    """Median onnxruntime time for one sample (batch 1), after a warm-up."""
    session = _session(onnx_path)
    feed = {session.get_inputs()[0].name: sample[None].astype(np.float32)}
    for _ in range(20):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000

