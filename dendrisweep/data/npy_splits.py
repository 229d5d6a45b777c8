"""The Edge Impulse data layout: read it, check it, write it.

Edge Impulse hands a learning block `X_split_train.npy`, `Y_split_train.npy`, `X_split_test.npy`
and `Y_split_test.npy` (the "test" pair is the validation split). X is one flat feature vector per
sample (MFCC: frame after frame, 13 coefficients each); Y is one-hot. Every check here produces one
UsageError naming the file and the problem, because a block that trains on misread data and
reports a number is worse than one that stops.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dendrisweep.data.dataset import LabelledArrays
from dendrisweep.errors import UsageError

FILES = ("X_split_train.npy", "Y_split_train.npy", "X_split_test.npy", "Y_split_test.npy")


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle, which we never allow
        raise UsageError(f"{path.name}: cannot be read as a numeric array ({exc})") from None
    except OSError as exc:
        raise UsageError(f"{path.name}: cannot be read ({exc})") from None


def _features(x: np.ndarray, name: str) -> np.ndarray:
    if x.ndim != 2:
        raise UsageError(f"{name}: expected a 2-D array (samples x features), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise UsageError(f"{name}: is empty (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UsageError(f"{name}: expected numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise UsageError(f"{name}: contains NaN or infinite values (first in sample {row})")
    return x


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    """One-hot rows to integer labels; anything that is not one-hot is an error."""
    if y.ndim != 2:
        raise UsageError(f"{name}: expected one-hot labels (samples x classes), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.number):
        raise UsageError(f"{name}: expected numeric one-hot labels, got dtype {y.dtype}")
    if not np.all(np.isin(y, (0, 1))) or not np.all(y.sum(axis=1) == 1):
        row = int(np.argwhere(~(np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)))[0][0])
        raise UsageError(f"{name}: row {row} is not one-hot (each row needs exactly one 1)")
    return y.argmax(axis=1).astype(np.int64)


def check_pair(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> LabelledArrays:
    """Validate one X/Y pair and convert it to float32 features and int64 labels."""
    features = _features(x, x_name)
    labels = _labels(y, y_name)
    if features.shape[0] != labels.shape[0]:
        raise UsageError(f"{x_name} has {features.shape[0]} samples but {y_name} has {labels.shape[0]}")
    return LabelledArrays(features, labels)


def read_directory(directory: Path) -> tuple[LabelledArrays, LabelledArrays, int]:
    """Read and check an Edge Impulse data folder: (train, validation, number of classes)."""
    if not directory.is_dir():
        raise UsageError(f"data directory {directory} does not exist")
    missing = [f for f in FILES if not (directory / f).is_file()]
    if missing:
        raise UsageError(f"data directory {directory} lacks {', '.join(missing)}")
    raw = {f: _load(directory / f) for f in FILES}
    y_train, y_val = raw["Y_split_train.npy"], raw["Y_split_test.npy"]
    if y_train.ndim == 2 and y_val.ndim == 2 and y_train.shape[1] != y_val.shape[1]:
        raise UsageError(f"Y_split_train.npy has {y_train.shape[1]} classes but "
                         f"Y_split_test.npy has {y_val.shape[1]}")
    train = check_pair(raw["X_split_train.npy"], y_train, "X_split_train.npy", "Y_split_train.npy")
    val = check_pair(raw["X_split_test.npy"], y_val, "X_split_test.npy", "Y_split_test.npy")
    if train.x.shape[1] != val.x.shape[1]:
        raise UsageError(f"X_split_train.npy has {train.x.shape[1]} features per sample but "
                         f"X_split_test.npy has {val.x.shape[1]}")
    return train, val, int(y_train.shape[1])


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """Integer labels to the float32 one-hot rows Edge Impulse uses."""
    return np.eye(classes, dtype=np.float32)[labels]


def write_directory(directory: Path, train: LabelledArrays, val: LabelledArrays, classes: int) -> None:
    """Write the four .npy files of the Edge Impulse layout."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = (train.x, one_hot(train.y, classes), val.x, one_hot(val.y, classes))
    for name, array in zip(FILES, arrays, strict=True):
        np.save(directory / name, array.astype(np.float32, copy=False))
