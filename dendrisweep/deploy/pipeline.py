"""A trained model to files a device can run, each proven: ONNX -> parity gate -> TFLite float32 and int8
-> deployment gate -> one measured record, `Deployed`.

Every deployment goes through `deploy`, under a `Policy` its caller takes from the constructors below:
the Edge Impulse block ships its files (`Policy.block`), a trial measures its deployed model
(`Policy.measure`), `analysis regenerate` proves its pair (`Policy.regenerate`); so their numbers carry
the same keys. Every accuracy is on the held-out split (the test split, or validation when the data has
none), which chose nothing; the parity gate also runs on the validation split. Any gate that fails
raises ExportError naming the model and the numbers.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dendrisweep.files import write_atomic

if TYPE_CHECKING:  # torch and the data loaders are imported when a model is deployed, not before
    from torch import nn

    from dendrisweep.data import Dataset

BLOCK_ONNX_FILE = "model.onnx"  # what Edge Impulse picks up from a block
BLOCK_TFLITE_INT8_FILE = "model_quantized_int8_io.tflite"
# A trial measures its deployed model, it does not ship it: the int8 tolerance set to the whole scale lets a
# lossy int8 model through, recorded with its low tflite_int8_acc, instead of failing the measurement.
MEASURE_ONLY_TOLERANCE_PP = 100.0
RECORD_FILE = "deployed.json"  # the whole `Deployed`, beside the files of a trial's deployment


@dataclass(frozen=True)
class Policy:
    """What one deployment writes (its file names), how strictly it gates int8, and whether int8 ships."""

    onnx: str
    onnx_int8: str  # onnxruntime's static int8 (QDQ), for comparison
    tflite: str
    tflite_int8: str  # full int8, int8 input and output: what a microcontroller runs
    int8_tolerance_pp: float  # int8 TFLite may lose at most this against float32 (deploy/gate.py)
    ships_int8: bool = True  # False: no int8 TFLite file is written or judged

    @classmethod
    def block(cls, int8_tolerance_pp: float, ships_int8: bool = True) -> Policy:
        """The Edge Impulse block's: the names Edge Impulse picks up, gated at the trial's tolerance
        (`ships_int8`: train_input.json's convertInt8)."""
        return cls(BLOCK_ONNX_FILE, "model_int8.onnx", "model.tflite", BLOCK_TFLITE_INT8_FILE, int8_tolerance_pp,
                   ships_int8)

    @classmethod
    def measure(cls) -> Policy:
        """A trial measuring its deployed model (setting deploy_metrics): the block's names, nothing gated
        on int8's loss."""
        return cls.block(MEASURE_ONLY_TOLERANCE_PP)

    @classmethod
    def regenerate(cls, name: str, int8_tolerance_pp: float) -> Policy:
        """`analysis regenerate`'s model `name` (dendritic, baseline): files named after it, gated at the
        trial's tolerance."""
        return cls(f"{name}.onnx", f"{name}.int8.onnx", f"{name}.tflite", f"{name}_quantized_int8_io.tflite",
                   int8_tolerance_pp)

    def shipped(self) -> list[str]:
        """The files a block hands Edge Impulse: the TFLite files the gate judged, nothing else."""
        return [self.tflite, *((self.tflite_int8,) if self.ships_int8 else ())]

    def files(self) -> dict[str, str]:
        """The files a deployment writes, by role."""
        roles = ("onnx", "onnx_int8", "tflite", *(("tflite_int8",) if self.ships_int8 else ()))
        return {role: getattr(self, role) for role in roles}


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
    files: dict[str, str]  # the Policy's files that were written, by role

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, folder: Path) -> None:
        """Write the record beside the deployment's files (RECORD_FILE)."""
        write_atomic(folder / RECORD_FILE, json.dumps(self.as_dict(), indent=2))

    @classmethod
    def load(cls, folder: Path) -> Deployed:
        """The record `save` wrote in `folder`."""
        return cls(**json.loads((folder / RECORD_FILE).read_text()))


def deploy(trained: nn.Module, inference: nn.Module, data: Dataset, out_dir: Path, policy: Policy) -> Deployed:
    """Export `inference` (the deployable form of `trained`) into `out_dir` and prove every file."""
    import numpy as np

    from dendrisweep.deploy.gate import judge
    from dendrisweep.deploy.onnx_export import (
        accuracy,
        check_parity,
        export_onnx,
        latency_ms,
        onnx_probabilities,
        quantize_int8,
    )
    from dendrisweep.deploy.tflite import convert, score

    held_out, split = (data.test, "test") if data.test is not None else (data.val, "validation")
    x, y = held_out.x, held_out.y
    onnx_path = export_onnx(inference, data.shape.sample, out_dir / policy.onnx)
    check_parity(trained, onnx_path, data.val.x, data.val.y)
    torch_acc, onnx_acc, max_prob_diff = check_parity(trained, onnx_path, x, y)
    calibration = data.val.x  # as Edge Impulse's conversion code calibrates: every row of the validation split
    onnx_int8_path = quantize_int8(onnx_path, calibration, out_dir / policy.onnx_int8)
    # The deployment gate: the chain Edge Impulse runs, each TFLite file scored by LiteRT on the held-out rows.
    float32_path = out_dir / policy.tflite
    int8_path = out_dir / policy.tflite_int8 if policy.ships_int8 else None
    seconds = convert(onnx_path, float32_path, int8_path, calibration)
    fp32, fp32_latency, fp32_arena, _ = score(float32_path, x)
    int8, int8_latency, int8_arena = score(int8_path, x)[:3] if int8_path is not None else (None, None, None)
    reference = onnx_probabilities(onnx_path, x)
    warning = judge(onnx_path.name, reference, fp32, int8, y, policy.int8_tolerance_pp)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    return Deployed(
        split=split, samples=len(y), torch_acc=torch_acc, onnx_acc=onnx_acc,
        onnx_int8_acc=accuracy(onnx_probabilities(onnx_int8_path, x), y), tflite_acc=accuracy(fp32, y),
        tflite_int8_acc=accuracy(int8, y) if int8 is not None else None, max_prob_diff=max_prob_diff,
        tflite_max_prob_diff=float(np.abs(fp32 - reference).max()), onnx_bytes=onnx_path.stat().st_size,
        onnx_int8_bytes=onnx_int8_path.stat().st_size, tflite_bytes=float32_path.stat().st_size,
        tflite_int8_bytes=int8_path.stat().st_size if int8_path is not None else None,
        arena_bytes=int8_arena if int8 is not None else fp32_arena,  # the model the device runs: int8 if any
        onnx_latency_ms=latency_ms(onnx_path, x[0]), onnx_int8_latency_ms=latency_ms(onnx_int8_path, x[0]),
        tflite_latency_ms=fp32_latency, tflite_int8_latency_ms=int8_latency,
        convert_seconds=sum(seconds.values()), int8_tolerance_pp=policy.int8_tolerance_pp, files=policy.files())
