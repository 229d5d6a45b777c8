"""Rebuild the binary files of this corpus (small .npy data folders, weight files): python make_files.py

Each data folder is a valid Edge Impulse layout (12 train / 6 validation samples, 5 MFCC frames x 13,
3 classes) with exactly one thing wrong, named by the folder.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES, CLASSES = 5 * 13, 3


def _split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, FEATURES)).astype(np.float32)
    y = np.eye(CLASSES, dtype=np.float32)[np.arange(n) % CLASSES]
    return x, y


def _write(name: str, arrays: dict[str, np.ndarray]) -> None:
    folder = HERE / "data" / name
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.npy"):
        stale.unlink()
    for file, array in arrays.items():
        np.save(folder / file, array)


class _Exploit:
    """Unpickling this runs code: a loader without weights_only=True would print 'pwned'."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, ("echo pwned",)


def main() -> None:
    rng = np.random.default_rng(0)
    (xt, yt), (xv, yv) = _split(12, rng), _split(6, rng)
    good = {"X_split_train.npy": xt, "Y_split_train.npy": yt, "X_split_test.npy": xv, "Y_split_test.npy": yv}
    _write("missing_files", {"X_split_train.npy": xt})
    _write("wrong_shape", {**good, "X_split_train.npy": xt.reshape(12, 5, 13)})
    nan = xt.copy()
    nan[4, 7] = np.nan
    _write("nan", {**good, "X_split_train.npy": nan})
    _write("onehot_width_mismatch", {**good, "Y_split_test.npy": np.eye(4, dtype=np.float32)[np.arange(6) % 4]})
    _write("one_class", {**good, "Y_split_train.npy": np.ones((12, 1), np.float32),
                         "Y_split_test.npy": np.ones((6, 1), np.float32)})
    _write("labels_not_one_hot", {**good, "Y_split_train.npy": yt * 2})
    _write("sample_count_mismatch", {**good, "Y_split_train.npy": yt[:10]})
    _write("feature_count_mismatch", {**good, "X_split_test.npy": xv[:, :52]})
    weights = HERE / "weights"
    weights.mkdir(exist_ok=True)
    with (weights / "pickled_code.pt").open("wb") as handle:
        pickle.dump({"features.0.0.weight": _Exploit()}, handle)
    (weights / "not_weights.pt").write_bytes(b"this is not a tensor file\n")


if __name__ == "__main__":
    main()
