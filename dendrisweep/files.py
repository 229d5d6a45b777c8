"""Files read and written safely: writes that never leave a half-written file (a killed process leaves
the old file or the new one), and tensor files loaded without ever running pickled code."""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from dendrisweep.errors import UsageError


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_dir(path: Path, what: str) -> Path:
    """Create an output folder and prove it writable up front: an unusable one fails in one line,
    before any work is done, instead of as a traceback at the end."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write {what} {path} ({exc.strerror or exc})") from None
    return path


def require_weights(path: str | Path) -> Path:
    """The pretrained-weights file a config names must exist; checked before any slow import."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"pretrained_weights: {path} does not exist (weights are never downloaded; "
                         "save a torchvision state dict there first)")
    return path


def load_tensors(path: Path, what: str) -> Any:
    """`torch.load(weights_only=True)`: tensors and plain values only, so a file crafted to run code on
    unpickling is refused (one UsageError) instead of executed."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  not a tensor file, truncated, or pickled code
        text = str(exc).strip()
        reason = ("refused: it needs pickled code to load; only tensors and plain values are accepted"
                  if "weights_only" in text or "Weights only" in text
                  else (text.splitlines()[0] if text else type(exc).__name__))
        raise UsageError(f"{what}: cannot load {path} ({reason})") from None
