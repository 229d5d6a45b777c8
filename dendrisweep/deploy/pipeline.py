"""A trained model to files a device can run, each proven: checkpoint -> ONNX -> parity gate -> TFLite
float32 and int8 -> deployment gate -> one measured record.

The Edge Impulse block (`train_trial.py --edge-impulse`) and `analysis regenerate` both deploy through
`deploy`, so their numbers carry the same keys (`Deployed`). Every accuracy is on the held-out split
(the test split, or validation when the data has none), which chose nothing; the parity gate also runs
on the validation split. Any gate that fails raises ExportError naming the model and the numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch and the data loaders are imported when a model is deployed, not before
    from torch import nn

    from dendrisweep.data import Dataset


@dataclass(frozen=True)
class Names:
    """The file names one deployment writes in its folder."""

    onnx: str
    onnx_int8: str  # onnxruntime's static int8 (QDQ), for comparison
    tflite: str
    tflite_int8: str  # full int8, int8 input and output: what a microcontroller runs


@dataclass(frozen=True)
class Deployed:
    """What the pipeline measured (accuracy as a fraction, sizes in bytes, latency per sample in ms)."""

    split: str  # "test", or "validation" when the data has no test split
    samples: int
    torch_acc: float  # the trained model, in PyTorch
    onnx_acc: float
    onnx_int8_acc: float
    tflite_acc: float
    tflite_int8_acc: float | None  # None: no int8 file was asked for
    max_prob_diff: float  # ONNX vs PyTorch
    tflite_max_prob_diff: float  # TFLite float32 vs ONNX
    onnx_bytes: int
    onnx_int8_bytes: int
    tflite_bytes: int
    tflite_int8_bytes: int | None
    arena_bytes: int | None  # peak activation memory of the model the device runs (a RAM estimate)
    onnx_latency_ms: float
    onnx_int8_latency_ms: float
    tflite_latency_ms: float
    tflite_int8_latency_ms: float | None
    convert_seconds: float
    int8_tolerance_pp: float
    files: dict[str, str]  # the Names that were written

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def deploy(trained: nn.Module, inference: nn.Module, data: Dataset, out_dir: Path, names: Names,
           int8_tolerance_pp: float, tflite_int8: bool = True) -> Deployed:
    """Export `inference` (the deployable form of `trained`) into `out_dir` and prove every file."""
    from dendrisweep import export
    from dendrisweep.deploy.gate import calibration_rows, verify_deployment

    held_out, split = (data.test, "test") if data.test is not None else (data.val, "validation")
    onnx_path = export.export_onnx(inference, data.shape.sample, out_dir / names.onnx)
    export.check_parity(trained, onnx_path, data.val.x, data.val.y)
    parity = export.check_parity(trained, onnx_path, held_out.x, held_out.y)
    calibration = calibration_rows(data.val.x)  # as Edge Impulse's conversion code: the validation split
    int8_path = export.quantize_int8(onnx_path, calibration, out_dir / names.onnx_int8)
    gate = verify_deployment(onnx_path, out_dir / names.tflite, out_dir / names.tflite_int8 if tflite_int8 else None,
                             calibration, held_out.x, held_out.y, int8_tolerance_pp)
    written = [names.onnx, names.onnx_int8, names.tflite, *([names.tflite_int8] if tflite_int8 else [])]
    return Deployed(
        split=split, samples=len(held_out.y), torch_acc=parity.torch_acc, onnx_acc=parity.onnx_acc,
        onnx_int8_acc=export.accuracy(int8_path, held_out.x, held_out.y), tflite_acc=gate.tflite_acc,
        tflite_int8_acc=gate.tflite_int8_acc, max_prob_diff=parity.max_prob_diff,
        tflite_max_prob_diff=gate.tflite_max_prob_diff, onnx_bytes=onnx_path.stat().st_size,
        onnx_int8_bytes=int8_path.stat().st_size, tflite_bytes=gate.tflite_bytes,
        tflite_int8_bytes=gate.tflite_int8_bytes, arena_bytes=gate.arena_bytes,
        onnx_latency_ms=export.latency_ms(onnx_path, held_out.x[0]),
        onnx_int8_latency_ms=export.latency_ms(int8_path, held_out.x[0]), tflite_latency_ms=gate.tflite_latency_ms,
        tflite_int8_latency_ms=gate.tflite_int8_latency_ms, convert_seconds=gate.convert_seconds,
        int8_tolerance_pp=int8_tolerance_pp,
        files={role: name for role, name in asdict(names).items() if name in written})


def deploy_checkpoint(checkpoint_path: Path, data_directory: Path | None, out_dir: Path,
                      names: Names) -> tuple[Deployed, Dataset]:
    """`deploy` for a trial's best_model.pt, on the data its config names (rebuilt on the CPU); also
    returns that data (its digest says whether it is the data the trial trained on)."""
    from dendrisweep.data import load_dataset
    from dendrisweep.trial import checkpoint
    from dendrisweep.trial.trainer import strategy_for

    model, config = checkpoint.load(checkpoint_path)
    data = load_dataset(data_directory, config)
    inference = strategy_for(config).inference_model(model)
    return deploy(model, inference, data, out_dir, names, config["int8_tolerance_pp"]), data
