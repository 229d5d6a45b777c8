"""Where a trial trains: the `device` and `amp` settings resolved against this machine.

`auto` picks CUDA (the first visible GPU: an agent started with --gpus makes each worker see one),
then Apple's MPS, then the CPU. Asking for a device this machine does not have is bad input: one
line and exit 2 before anything is written, never a silent fall back to the CPU.
"""
from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from dendrisweep.errors import UsageError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _mps() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _cuda_context() -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (f"torch {torch.__version__} sees {torch.cuda.device_count()} CUDA device(s)"
            + (f" with CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""))


def resolve(requested: str) -> torch.device:
    """The torch device for a `device` setting; a device this machine lacks is a UsageError."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device("mps") if _mps() else torch.device("cpu")
    if requested.startswith("cuda"):
        index = int(requested.partition(":")[2] or 0)
        if not torch.cuda.is_available():
            raise UsageError(f"device: {requested} asked for, but CUDA is not available here ({_cuda_context()})")
        if index >= torch.cuda.device_count():
            raise UsageError(f"device: {requested} asked for, but {_cuda_context()}")
        return torch.device("cuda", index)
    if requested == "mps" and not _mps():
        raise UsageError("device: mps asked for, but Apple's MPS backend is not available here")
    return torch.device(requested)


def name(device: torch.device) -> str:
    """A human name for the device, recorded with the result (which GPU, or which CPU)."""
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return platform.processor() or platform.machine() or "cpu"


@dataclass(frozen=True)
class Precision:
    """Mixed precision for one trial: autocast to `dtype` on `device`, loss scaling for fp16 on CUDA."""

    device: torch.device
    amp: str = "off"

    def __post_init__(self) -> None:
        if self.amp == "fp16" and self.device.type == "cpu":
            raise UsageError("amp: fp16 needs a GPU (CUDA or MPS); on the CPU use bf16")

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.amp == "off":
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=AMP_DTYPES[self.amp]):
            yield

    def scaler(self) -> Any:
        """torch's GradScaler for fp16 on CUDA (small gradients would underflow), else a no-op one."""
        return torch.amp.GradScaler("cuda", enabled=self.amp == "fp16" and self.device.type == "cuda")
