"""Data for a trial: train / validation / test splits, for either task.

Keyword spotting: Edge Impulse's MFCC files or the built-in keyword set. Images (MobileNet): an
ImageFolder, CIFAR-10 from a local folder, or the offline digits set (data/images.py).

Validation (Edge Impulse's "test" pair) drives model selection and PAI's switching; the test split
is carved once from the training split with a fixed seed, so every trial of a sweep is scored on
the same held-out samples and the reported test accuracy is never the one used to pick the model.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dendrisweep.data.edge_impulse import LabelledArrays, read_directory
from dendrisweep.data.synthetic import COEFFICIENTS, make_keyword_data
from dendrisweep.errors import UsageError


@dataclass(frozen=True)
class DataShape:
    """What a network needs to know about its data: one sample's shape (no batch axis), classes."""

    sample: tuple[int, ...]
    classes: int

    @property
    def features(self) -> int:
        return math.prod(self.sample)


@dataclass(frozen=True)
class Dataset:
    """Everything a trial needs to know about its data."""

    train: LabelledArrays
    val: LabelledArrays
    test: LabelledArrays | None
    num_classes: int
    source: str
    digest: str

    @property
    def shape(self) -> DataShape:
        return DataShape(tuple(self.train.x.shape[1:]), self.num_classes)


def _digest(*parts: LabelledArrays) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(np.ascontiguousarray(part.x).tobytes())
        h.update(np.ascontiguousarray(part.y).tobytes())
    return h.hexdigest()[:16]


def hold_out(train: LabelledArrays, fraction: float, seed: int) -> tuple[LabelledArrays, LabelledArrays | None]:
    """Split a stratified test set off the training split (fixed by `seed`, not the trial seed)."""
    if fraction <= 0:
        return train, None
    rng = np.random.default_rng([seed, 7])
    test_idx: list[np.ndarray] = []
    for label in np.unique(train.y):
        members = np.flatnonzero(train.y == label)
        take = int(round(len(members) * fraction))
        if take and take < len(members):
            test_idx.append(rng.choice(members, size=take, replace=False))
    if not test_idx:
        return train, None
    test_mask = np.zeros(len(train.y), dtype=bool)
    test_mask[np.concatenate(test_idx)] = True
    keep = LabelledArrays(train.x[~test_mask], train.y[~test_mask])
    return keep, LabelledArrays(train.x[test_mask], train.y[test_mask])


def _keyword_data(data_directory: Path | None, config: Mapping[str, Any]) -> tuple[
        LabelledArrays, LabelledArrays, int, str]:
    if data_directory is None:
        train, val, classes = make_keyword_data(config["data_seed"], config["builtin_samples"])
        source = f"built-in keywords (data_seed={config['data_seed']}, {config['builtin_samples']} samples)"
    else:
        train, val, classes = read_directory(data_directory)
        source = str(data_directory)
    features = train.x.shape[1]
    if features % COEFFICIENTS:
        raise UsageError(f"{source}: {features} features per sample is not a whole number of "
                         f"{COEFFICIENTS}-coefficient MFCC frames")
    return train, val, classes, source


def load_dataset(data_directory: Path | None, config: Mapping[str, Any]) -> Dataset:
    """Load, check and split the data a config asks for."""
    if config["task"] == "mobilenet":
        from dendrisweep.data.images import load_images

        train, val, classes, source = load_images(data_directory, config)
    else:
        train, val, classes, source = _keyword_data(data_directory, config)
    present = np.unique(train.y)
    if len(present) < 2:
        raise UsageError(f"{source}: the training split holds a single class ({int(present[0])}); "
                         "classification needs at least two")
    digest = _digest(train, val)
    train, test = hold_out(train, config["test_fraction"], config["data_seed"])
    return Dataset(train, val, test, classes, source, digest)
