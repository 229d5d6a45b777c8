"""The built-in offline data set: MFCC-shaped "keywords" generated from a seed.

Each class is a word made of three "phonemes" drawn from a shared pool (so classes share sounds and
differ in their order), each phoneme a smooth 13-coefficient spectrum held for a few frames. A
sample places the word at a random onset with jittered durations and loudness over a drifting
noise floor. A small Conv1D network learns it to well above chance but not to 100%, which is the
regime where dendrites can show a difference. Nothing is downloaded; the same seed gives the same
arrays on every machine.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dendrisweep.contract import DATA_CACHE_ENV
from dendrisweep.data.dataset import COEFFICIENTS, LabelledArrays

FRAMES = 50  # 1 s of 20 ms frames, as Edge Impulse's MFCC block produces
CLASSES = 4
_PHONEMES = 6
_PHONEMES_PER_WORD = 3
_NOISE = 1.1


def _smooth(rng: np.random.Generator, size: int) -> np.ndarray:
    raw = rng.normal(size=size + 4)
    return np.convolve(raw, np.ones(5) / 5, mode="valid") * 2.0


def _words(rng: np.random.Generator) -> np.ndarray:
    """Distinct phoneme sequences, one row per class."""
    words: list[list[int]] = []
    while len(words) < CLASSES:
        word = [int(p) for p in rng.choice(_PHONEMES, size=_PHONEMES_PER_WORD, replace=False)]
        if word not in words:
            words.append(word)
    return np.array(words)


def make_split(rng: np.random.Generator, count: int, words: np.ndarray,
               phonemes: np.ndarray) -> LabelledArrays:
    """`count` samples, classes balanced and shuffled, generated in one vectorised pass."""
    labels = np.arange(count) % CLASSES
    rng.shuffle(labels)
    durations = rng.integers(5, 10, size=(count, _PHONEMES_PER_WORD))
    onsets = rng.integers(0, FRAMES - durations.sum(axis=1) + 1)[:, None]
    loudness = rng.uniform(0.6, 1.4, size=count)
    t = np.arange(FRAMES)
    x = np.zeros((count, FRAMES, COEFFICIENTS))
    starts = onsets + np.concatenate([np.zeros((count, 1), int), durations.cumsum(axis=1)[:, :-1]], axis=1)
    for k in range(_PHONEMES_PER_WORD):
        held = (t >= starts[:, k:k + 1]) & (t < starts[:, k:k + 1] + durations[:, k:k + 1])
        x += held[:, :, None] * phonemes[words[labels, k]][:, None, :]
    x *= loudness[:, None, None]
    slope = rng.normal(scale=0.8, size=count)[:, None, None] * rng.normal(size=(count, 1, COEFFICIENTS))
    x += np.linspace(0, 1, FRAMES)[None, :, None] * slope
    x += rng.normal(scale=_NOISE, size=x.shape)
    return LabelledArrays(x.reshape(count, -1).astype(np.float32), labels.astype(np.int64))


def make_keyword_data(seed: int, train_samples: int = 1200) -> tuple[LabelledArrays, LabelledArrays, int]:
    """(train, validation, number of classes) for a data seed; validation is a quarter the size."""
    rng = np.random.default_rng([seed, 20251])
    phonemes = np.stack([_smooth(rng, COEFFICIENTS) for _ in range(_PHONEMES)])
    words = _words(rng)
    train = make_split(rng, train_samples, words, phonemes)
    val = make_split(rng, train_samples // 4, words, phonemes)
    return train, val, CLASSES


def cached_keyword_data(seed: int, train_samples: int,
                        env: Mapping[str, str] = os.environ) -> tuple[LabelledArrays, LabelledArrays, int]:
    """make_keyword_data, read from the folder $DENDRISWEEP_DATA_CACHE names when a trial before this one
    wrote it there (a sweep's trials all train on the same arrays: generating 12,000 samples costs each of
    them ~0.7 s). The file is named by this module's own source hash, so a changed generator never reads
    an old copy; a copy that cannot be read is made again. Without the variable: generated, nothing written."""
    folder = env.get(DATA_CACHE_ENV)
    if not folder:
        return make_keyword_data(seed, train_samples)
    version = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    path = Path(folder) / f"keywords-{version}-{seed}-{train_samples}.npz"
    try:
        with np.load(path, allow_pickle=False) as cached:
            return (LabelledArrays(cached["train_x"], cached["train_y"]),
                    LabelledArrays(cached["val_x"], cached["val_y"]), CLASSES)
    except (OSError, KeyError, ValueError):
        pass  # not there yet, or torn: made again below
    train, val, classes = make_keyword_data(seed, train_samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.npz")  # trials write at once: each its own
    np.savez(partial, train_x=train.x, train_y=train.y, val_x=val.x, val_y=val.y)
    os.replace(partial, path)  # atomic: a reader sees the whole file or none
    return train, val, classes
