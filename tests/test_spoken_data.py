"""The offline spoken-keyword data set: real eSpeak NG audio, Edge Impulse layout and MFCCs, reproducible."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dendrisweep.data import DataShape, load_dataset
from dendrisweep.data.npy_splits import FILES
from dendrisweep.data.spoken import CLASSES, SAMPLES, build, filterbank, mfcc
from dendrisweep.settings import defaults
from tests.helpers import run_script

PER_CLASS = 10  # 8 training and 2 validation samples of each class


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spoken")
    build(out, seed=0, per_class=PER_CLASS)
    return out


def _arrays(directory: Path) -> dict[str, np.ndarray]:
    return {name: np.load(directory / name) for name in FILES}


def test_folder_has_the_edge_impulse_layout_balanced_classes_and_labels(folder: Path) -> None:
    arrays = _arrays(folder)
    for split, per_class in (("train", 8), ("test", 2)):
        x, y = arrays[f"X_split_{split}.npy"], arrays[f"Y_split_{split}.npy"]
        assert x.shape == (6 * per_class, 650) and x.dtype == np.float32
        assert y.shape == (6 * per_class, 6) and set(np.unique(y)) == {0, 1} and (y.sum(axis=1) == 1).all()
        assert y.sum(axis=0).tolist() == [per_class] * 6
        assert np.isfinite(x).all()
    assert json.loads((folder / "labels.json").read_text()) == ["down", "no", "noise", "unknown", "up", "yes"]
    assert list(CLASSES) == sorted(CLASSES)


def test_same_seed_gives_identical_arrays_and_another_seed_different_ones(folder: Path, tmp_path: Path) -> None:
    build(tmp_path / "again", seed=0, per_class=PER_CLASS)
    build(tmp_path / "other", seed=1, per_class=PER_CLASS)
    first, again, other = _arrays(folder), _arrays(tmp_path / "again"), _arrays(tmp_path / "other")
    for name in FILES:
        assert first[name].tobytes() == again[name].tobytes(), name
    assert not np.array_equal(first["X_split_train.npy"], other["X_split_train.npy"])


def test_speech_classes_differ_from_the_noise_class(folder: Path) -> None:
    """A word is a short loud stretch in a quieter clip, so the normalised log energy (coefficient 0)
    is skewed to the right; steady or swelling noise is not."""
    arrays = _arrays(folder)
    x = np.concatenate([arrays["X_split_train.npy"], arrays["X_split_test.npy"]]).reshape(-1, 50, 13)
    labels = np.concatenate([arrays["Y_split_train.npy"], arrays["Y_split_test.npy"]]).argmax(axis=1)
    energy = x[:, :, 0]
    centred = energy - energy.mean(axis=1, keepdims=True)
    skew = (centred ** 3).mean(axis=1) / energy.std(axis=1) ** 3
    noise = labels == CLASSES.index("noise")
    assert skew[~noise].mean() > skew[noise].mean() + 0.5


def test_load_dataset_reads_the_folder_as_50_frames_of_13_coefficients(folder: Path) -> None:
    data = load_dataset(folder, {**defaults()})
    assert data.shape == DataShape((650,), 6)
    assert len(data.val.y) == 12


def test_cli_writes_the_folder_and_rejects_a_bad_size_with_exit_2(tmp_path: Path) -> None:
    done = run_script("-m", "dendrisweep.data.spoken", "--out", str(tmp_path / "kw"), "--per-class", "2")
    assert done.returncode == 0, done.stderr
    assert "12 samples" in done.stdout and "6 classes" in done.stdout
    assert all((tmp_path / "kw" / name).is_file() for name in (*FILES, "labels.json"))
    bad = run_script("-m", "dendrisweep.data.spoken", "--out", str(tmp_path / "bad"), "--per-class", "1")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "per_class" in bad.stderr


def test_mfcc_is_gain_invariant_and_follows_a_tone_burst() -> None:
    """Normalisation removes the recording level; the log energy peaks where the sound is."""
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLES) / SAMPLES
    signal = 30 * rng.standard_normal(SAMPLES) + 3000 * np.sin(2 * np.pi * 1000 * t) * ((t >= 0.4) & (t < 0.6))
    features = mfcc(signal)
    assert features.shape == (50, 13) and np.isfinite(features).all()
    np.testing.assert_allclose(mfcc(10 * signal), features, atol=1e-6)
    energy = features[:, 0]
    assert energy[20:30].min() > energy[:19].max() and energy[20:30].min() > energy[31:].max()
    assert np.allclose(mfcc(rng.standard_normal((2, SAMPLES))).mean(axis=1), 0, atol=0.1)


def test_mel_filters_are_non_empty_and_ascending() -> None:
    bank = filterbank()
    assert bank.shape == (32, 129) and (bank.max(axis=1) > 0).all()
    assert (np.diff(bank.argmax(axis=1)) > 0).all()
