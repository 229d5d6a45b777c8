"""Child-process side of the TFLite chain: the only code that imports TensorFlow or LiteRT.

Run as a script by deploy/tflite.py, never imported by dendrisweep: TFLite's converter and kernels
abort() on graphs they cannot handle (seen: an int8 model aborting in allocate_tensors), which in a
child is an exit status and a message, and TensorFlow's ~3 s import and ~1 GB stay out of training.

    python tflite_worker.py convert float32|int8 SAVED_MODEL REPRESENTATIVE.npy OUT.tflite
    python tflite_worker.py score MODEL.tflite X.npy OUT.npz [litert|tensorflow]
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def to_layout(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Rows `x` arranged for a model input of `shape` (batch first): as they are, or NCHW images
    moved to the NHWC layout onnx2tf gives image models."""
    want = tuple(int(d) for d in shape[1:])
    if tuple(x.shape[1:]) == want:
        return x
    if x.ndim == 4 and x.transpose(0, 2, 3, 1).shape[1:] == want:
        return x.transpose(0, 2, 3, 1)
    raise SystemExit(f"data of shape {x.shape[1:]} does not fit the model input {tuple(shape)}")


def convert(kind: str, saved_model: str, representative: str, target: str) -> None:
    """One TFLiteConverter run with Edge Impulse's settings (its conversion.py): float32 (builtins + select TF
    ops, supported types float32 and int8), or full int8 (int8 ops and types only) with int8 input and
    output calibrated on representative rows, one sample per step."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if kind == "float32":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter.target_spec.supported_types = [tf.float32, tf.int8]
    else:
        (spec,) = tf.saved_model.load(saved_model).signatures["serving_default"].structured_input_signature[1].values()
        rows = to_layout(np.load(representative).astype(np.float32), tuple(spec.shape))

        def samples() -> Iterator[list[np.ndarray]]:
            for row in rows:
                yield [row[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.target_spec.supported_types = [tf.int8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    Path(target).write_bytes(converter.convert())


def _arena_bytes(interpreter: Any) -> int | None:
    """Peak bytes of activation tensors alive at once (ops in execution order): what a TFLite Micro
    memory planner needs at least; weights live in flash and are not counted. LiteRT's Python API
    has no arena figure, so this reads its op list (a private call): None if that changes."""
    try:
        ops = interpreter._get_ops_details()
        tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    except Exception:  # noqa: BLE001  private API
        return None
    born = {d["index"]: 0 for d in interpreter.get_input_details()}
    for step, op in enumerate(ops):
        for index in op["outputs"]:
            born.setdefault(index, step)
    last = dict(born)
    for step, op in enumerate(ops):
        for index in op["inputs"]:
            if index in last:
                last[index] = max(last[index], step)
    for detail in interpreter.get_output_details():
        last[detail["index"]] = len(ops)

    def size(index: int) -> int:
        return int(np.prod(tensors[index]["shape"])) * np.dtype(tensors[index]["dtype"]).itemsize

    return max((sum(size(i) for i in born if born[i] <= step <= last[i]) for step in range(len(ops))), default=0)


def _reference_interpreter(model: str, runtime: str) -> tuple[Any, str]:
    """The model in an interpreter with the reference kernels (the desktop stand-in for TFLite Micro):
    LiteRT's, or TensorFlow's own tf.lite one (to check files in the TensorFlow version Edge Impulse runs)."""
    if runtime == "tensorflow":
        import tensorflow as tf

        return (tf.lite.Interpreter(model_path=model,
                                    experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF),
                f"tensorflow {tf.__version__}")
    from importlib.metadata import version

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return (Interpreter(model_path=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF),
            f"ai-edge-litert {version('ai-edge-litert')}")


def score(model: str, rows: str, out: str, runtime: str = "litert") -> None:
    """Every row through the reference kernels, batch 1; int8 inputs quantised with the input tensor's
    scale and zero point, outputs dequantised."""
    interpreter, runtime_version = _reference_interpreter(model, runtime)
    interpreter.allocate_tensors()
    source, sink = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    x = to_layout(np.load(rows).astype(np.float32), tuple(source["shape"]))
    if np.issubdtype(source["dtype"], np.integer):
        scale, zero = source["quantization"]
        limits = np.iinfo(source["dtype"])
        x = np.clip(np.round(x / scale) + zero, limits.min, limits.max).astype(source["dtype"])
    out_scale, out_zero = sink["quantization"]
    quantized_out = np.issubdtype(sink["dtype"], np.integer)
    probabilities, seconds = [], []
    for row in x:
        interpreter.set_tensor(source["index"], row[None])
        started = time.perf_counter()
        interpreter.invoke()
        seconds.append(time.perf_counter() - started)
        value = interpreter.get_tensor(sink["index"])[0].astype(np.float32)
        probabilities.append((value - out_zero) * out_scale if quantized_out else value)
    meta = {"latency_ms": float(np.median(seconds) * 1000), "arena_bytes": _arena_bytes(interpreter),
            "runtime": runtime_version}
    np.savez(out, probabilities=np.asarray(probabilities, dtype=np.float32), meta=json.dumps(meta))


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        convert(*sys.argv[2:6])
    else:
        score(*sys.argv[2:6])
