"""What every data source produces: labelled arrays, the splits of a trial, their shape.

Validation (Edge Impulse's "test" pair) drives model selection and PAI's switching; the test split
is carved once from the training split with a fixed seed, so every trial of a sweep is scored on
the same held-out samples and the reported test accuracy is never the one used to pick the model.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

COEFFICIENTS = 13  # MFCC coefficients per frame of the built-in data sets (Edge Impulse MFCC default)


@dataclass(frozen=True)
class LabelledArrays:
    """Features (float32, one row per sample) and integer class labels."""

    x: np.ndarray
    y: np.ndarray


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


def digest(*parts: LabelledArrays) -> str:
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
