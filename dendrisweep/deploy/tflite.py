"""ONNX -> TensorFlow SavedModel -> TFLite float32 and full int8, and LiteRT scoring: the chain Edge
Impulse runs on a model.onnx (its published conversion code), reproduced so it can be checked here.

1. the batch axis fixed to 1 (TFLite Micro needs static shapes);
2. onnx2tf -> SavedModel (`-osd` keeps the input name `input`), after onnxsim (onnx2tf calls its
   CLI and silently skips simplification without it, so it must be on PATH);
3. TFLiteConverter: float32, and full int8 (int8 input/output, representative validation rows, as
   Edge Impulse calibrates).
Every TensorFlow and LiteRT step runs in a child process (deploy/tflite_worker.py): a converter or
kernel abort becomes an ExportError with the child's last stderr lines, never a dead caller.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dendrisweep.errors import ExportError

WORKER = Path(__file__).with_name("tflite_worker.py")
TIMEOUT_SECONDS = 1200
STDERR_TAIL = 2000
# onnx2tf 1.28 downloads this sample file for any 3-channel image input unless it is in its working
# folder; it only feeds onnx2tf's own dummy inference (not our calibration), so noise serves.
_ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def _environment() -> dict[str, str]:
    """This interpreter's bin folder first on PATH (onnx2tf finds `onnxsim` there), no GPU, quiet TF."""
    return {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
            "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _run(args: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=cwd,
                              env=_environment(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{what}: no answer after {TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        how = (f"killed by {signal.Signals(-done.returncode).name}" if done.returncode < 0
               else f"exit code {done.returncode}")
        raise ExportError(f"{what} failed ({how}): {(done.stderr or done.stdout)[-STDERR_TAIL:].strip()}")


def fix_batch_to_one(onnx_path: Path, out_path: Path) -> Path:
    """A copy whose inputs and outputs have batch 1, shapes inferred again (Edge Impulse does this)."""
    import onnx

    model = onnx.load(str(onnx_path))
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = 1
    del model.graph.value_info[:]
    onnx.save(onnx.shape_inference.infer_shapes(model), str(out_path))
    return out_path


def convert(onnx_path: Path, float32_path: Path, int8_path: Path | None,
            representative: np.ndarray) -> dict[str, float]:
    """Convert an exported model to float32 TFLite and (unless `int8_path` is None) full int8; returns
    the seconds each step took (onnx2tf, float32, int8)."""
    if shutil.which("onnxsim", path=_environment()["PATH"]) is None:
        raise ExportError("the onnxsim command is missing (pip install -r requirements.txt): onnx2tf would "
                          "silently convert an unsimplified graph")
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dendrisweep-tflite-") as scratch:
        work = Path(scratch)
        source = fix_batch_to_one(onnx_path, work / "model.onnx")  # onnx2tf rewrites its input: a copy
        np.save(work / _ONNX2TF_SAMPLE, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
        started = time.perf_counter()
        _run([sys.executable, "-m", "onnx2tf", "-i", str(source), "-o", str(work / "saved_model"), "-osd", "-n"],
             f"onnx2tf ({onnx_path.name} -> SavedModel)", cwd=work)
        seconds["onnx2tf"] = time.perf_counter() - started
        np.save(work / "representative.npy", np.asarray(representative, dtype=np.float32))
        for kind, target in (("float32", float32_path), ("int8", int8_path)):
            if target is None:
                continue
            started = time.perf_counter()
            target.unlink(missing_ok=True)
            _run([sys.executable, str(WORKER), "convert", kind, str(work / "saved_model"),
                  str(work / "representative.npy"), str(target)], f"TFLiteConverter ({kind}, {onnx_path.name})")
            seconds[kind] = time.perf_counter() - started
    return seconds


def score(tflite_path: Path, x: np.ndarray,
          tensorflow_python: str | None = None) -> tuple[np.ndarray, float, int | None, str]:
    """Run every row through LiteRT's reference kernels, one sample per invoke, in a child process; or,
    given `tensorflow_python` (another environment's Python: Edge Impulse's TensorFlow version, say),
    through that TensorFlow's own tf.lite interpreter with the same reference kernels.

    Returns (probabilities, median latency per sample in ms, arena bytes: the peak activation bytes alive
    at once, a RAM estimate, None when the interpreter cannot tell; the interpreter that ran it, with its
    version)."""
    python, runtime = (sys.executable, "litert") if tensorflow_python is None else (tensorflow_python, "tensorflow")
    with tempfile.TemporaryDirectory(prefix="dendrisweep-litert-") as scratch:
        rows, out = Path(scratch) / "x.npy", Path(scratch) / "out.npz"
        np.save(rows, np.asarray(x, dtype=np.float32))
        _run([python, str(WORKER), "score", str(tflite_path), str(rows), str(out), runtime],
             f"{'LiteRT' if tensorflow_python is None else 'TensorFlow interpreter'} ({tflite_path.name})")
        with np.load(out) as result:
            probabilities, meta = result["probabilities"], json.loads(str(result["meta"]))
    return probabilities, meta["latency_ms"], meta["arena_bytes"], meta["runtime"]
