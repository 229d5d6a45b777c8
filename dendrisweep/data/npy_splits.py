"""The Edge Impulse data layouts: read them, check them, write one.

Studio hands a learning block `X_split_train.npy`, `Y_split_train.npy`, `X_split_test.npy` and
`Y_split_test.npy` (the "test" pair is the validation split). `edge-impulse-blocks runner` (its
`--download-data`) writes the training job's names instead: `X_train_features.npy` and `y_train.npy`,
with `X_validate_features.npy` and `y_validate.npy` when the project has a validation split; without
one the block carves it (`--validation-set-size`, stratified, fixed by the data seed). X is one flat
feature vector per sample (frame after frame); Y is one-hot, Edge Impulse's structured rows (label index
from 1, sample id, window start and end), or one integer label per sample (Edge
Impulse's own Keras code reads them 1-based: `to_categorical(Y - 1)`; labels starting at 0 are read
0-based). Every check here produces one UsageError naming the file and the problem, because a block
that trains on misread data and reports a number is worse than one that stops.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dendrisweep.data.dataset import LabelledArrays, hold_out
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


STRUCTURED_COLUMNS = 4  # label index, sample id, window start, window end


def _integer_labels(y: np.ndarray, name: str) -> np.ndarray:
    """One integer label per sample ((N,) or (N, 1)): 1-based as Edge Impulse writes them, or 0-based."""
    flat = y.reshape(-1)
    if not np.issubdtype(flat.dtype, np.number) or not np.all(flat == np.round(flat)) or flat.size == 0:
        raise UsageError(f"{name}: expected integer class labels or one-hot rows, got dtype {y.dtype}")
    labels = flat.astype(np.int64)
    if labels.min() < 0:
        raise UsageError(f"{name}: negative class label {int(labels.min())}")
    return labels - 1 if labels.min() >= 1 else labels


FORMS = ("one-hot rows (samples x classes)", "one integer label per sample",
         "Edge Impulse's structured rows (label index from 1, sample id, window start and end in ms)")


def _one_hot_rows(y: np.ndarray) -> np.ndarray:
    """Which rows of a 2-D label array are one-hot (zeros and exactly one 1)."""
    return np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    """Labels in any of Edge Impulse's forms (FORMS) to 0-based integer labels; anything else is an error
    naming the forms."""
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        return _integer_labels(y, name)
    if y.ndim != 2:
        raise UsageError(f"{name}: shape {y.shape} is none of the label forms: {'; '.join(FORMS)}")
    if not np.issubdtype(y.dtype, np.number):
        raise UsageError(f"{name}: expected numeric labels, got dtype {y.dtype}")
    one_hot = _one_hot_rows(y)
    if one_hot.all():
        return y.argmax(axis=1).astype(np.int64)
    if y.shape[1] == STRUCTURED_COLUMNS and np.issubdtype(y.dtype, np.integer) and y[:, 0].min() >= 1:
        return y[:, 0].astype(np.int64) - 1  # Edge Impulse's label index is 1-based
    row = int(np.argwhere(~one_hot)[0][0])
    raise UsageError(f"{name}: row {row} is not one-hot, and the array ({y.shape[1]} columns, {y.dtype}) is not "
                     f"{FORMS[2]}: {STRUCTURED_COLUMNS} integer columns")


def check_pair(x: np.ndarray, y: np.ndarray, x_name: str, y_name: str) -> LabelledArrays:
    """Validate one X/Y pair and convert it to float32 features and int64 labels."""
    features = _features(x, x_name)
    labels = _labels(y, y_name)
    if features.shape[0] != labels.shape[0]:
        raise UsageError(f"{x_name} has {features.shape[0]} samples but {y_name} has {labels.shape[0]}")
    return LabelledArrays(features, labels)


RUNNER_FILES = ("X_train_features.npy", "y_train.npy")  # edge-impulse-blocks runner's layout
RUNNER_VALIDATION = ("X_validate_features.npy", "y_validate.npy")


def holds_project_data(directory: Path) -> bool:
    """Whether `directory` holds an Edge Impulse project's training data, in either layout."""
    return all((directory / f).is_file() for f in FILES[:2]) or all((directory / f).is_file() for f in RUNNER_FILES)


def _classes(y: np.ndarray, *labels: np.ndarray) -> int:
    """One-hot rows name the class count (a class may have no sample); other forms, the largest label."""
    one_hot = y.ndim == 2 and y.shape[1] > 1 and bool(_one_hot_rows(y).all())
    return int(y.shape[1]) if one_hot else int(max(int(lab.max()) for lab in labels) + 1)


def read_directory(directory: Path, validation_fraction: float = 0.2,
                   seed: int = 0) -> tuple[LabelledArrays, LabelledArrays, int]:
    """Read and check an Edge Impulse data folder, either layout: (train, validation, number of classes)."""
    if not directory.is_dir():
        raise UsageError(f"data directory {directory} does not exist")
    if all((directory / f).is_file() for f in RUNNER_FILES) and not (directory / FILES[0]).is_file():
        return _read_runner_layout(directory, validation_fraction, seed)
    missing = [f for f in FILES if not (directory / f).is_file()]
    if missing:
        raise UsageError(f"data directory {directory} lacks {', '.join(missing)} (or the runner's "
                         f"{' and '.join(RUNNER_FILES)})")
    raw = {f: _load(directory / f) for f in FILES}
    y_train, y_val = raw["Y_split_train.npy"], raw["Y_split_test.npy"]
    if y_train.ndim == 2 and y_val.ndim == 2 and y_train.shape[1] != y_val.shape[1]:
        raise UsageError(f"Y_split_train.npy has {y_train.shape[1]} classes but "
                         f"Y_split_test.npy has {y_val.shape[1]}")
    train = check_pair(raw["X_split_train.npy"], y_train, "X_split_train.npy", "Y_split_train.npy")
    val = check_pair(raw["X_split_test.npy"], y_val, "X_split_test.npy", "Y_split_test.npy")
    _same_width(train, val, "X_split_train.npy", "X_split_test.npy")
    return train, val, _classes(y_train, train.y, val.y)


def _same_width(train: LabelledArrays, val: LabelledArrays, train_name: str, val_name: str) -> None:
    if train.x.shape[1] != val.x.shape[1]:
        raise UsageError(f"{train_name} has {train.x.shape[1]} features per sample but "
                         f"{val_name} has {val.x.shape[1]}")


def _read_runner_layout(directory: Path, validation_fraction: float,
                        seed: int) -> tuple[LabelledArrays, LabelledArrays, int]:
    y_train = _load(directory / RUNNER_FILES[1])
    train = check_pair(_load(directory / RUNNER_FILES[0]), y_train, *RUNNER_FILES)
    if all((directory / f).is_file() for f in RUNNER_VALIDATION):
        val = check_pair(_load(directory / RUNNER_VALIDATION[0]), _load(directory / RUNNER_VALIDATION[1]),
                         *RUNNER_VALIDATION)
        _same_width(train, val, RUNNER_FILES[0], RUNNER_VALIDATION[0])
        return train, val, _classes(y_train, train.y, val.y)
    train, carved = hold_out(train, validation_fraction, seed)
    if carved is None:
        raise UsageError(f"{directory}: no validation split, and --validation-set-size {validation_fraction:g} "
                         "leaves none of these samples for one")
    return train, carved, _classes(y_train, train.y, carved.y)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """Integer labels to the float32 one-hot rows Edge Impulse uses."""
    return np.eye(classes, dtype=np.float32)[labels]


def write_directory(directory: Path, train: LabelledArrays, val: LabelledArrays, classes: int) -> None:
    """Write the four .npy files of the Edge Impulse layout."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = (train.x, one_hot(train.y, classes), val.x, one_hot(val.y, classes))
    for name, array in zip(FILES, arrays, strict=True):
        np.save(directory / name, array.astype(np.float32, copy=False))
