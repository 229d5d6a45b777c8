"""data/: Edge Impulse-layout data read correctly, the built-in set and the held-out split, and every kind of bad
folder one clear error (exit 2) from train_trial.py's main(), in process."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dendrisweep.data import DataShape, LabelledArrays, hold_out, load_dataset, resolve_data
from dendrisweep.data.load import MIN_TEST_SAMPLES, held_out_share
from dendrisweep.data.npy_splits import FILES, one_hot, write_directory
from dendrisweep.data.synthetic import make_keyword_data
from dendrisweep.errors import UsageError
from dendrisweep.models import build_model
from dendrisweep.settings import defaults
from dendrisweep.trial.cli import main


@pytest.fixture
def ei_dir(tmp_path: Path) -> Path:
    train, val, classes = make_keyword_data(1)
    write_directory(tmp_path / "data", train, val, classes)
    return tmp_path / "data"


def test_edge_impulse_folder_loads_with_shapes_from_the_arrays(ei_dir: Path) -> None:
    data = load_dataset(ei_dir, defaults())
    assert data.shape == DataShape((650,), 4)
    assert len(data.train.y) + len(data.test.y) == 1200 and len(data.val.y) == 300
    assert data.train.x.dtype == np.float32 and data.train.y.dtype == np.int64


def test_edge_impulses_structured_labels_read_as_their_one_hot_twins(ei_dir: Path) -> None:
    """Y as int32 rows of four columns (label index from 1, sample id, window start and end in ms)."""
    one_hot_data = load_dataset(ei_dir, defaults())
    for name in ("Y_split_train.npy", "Y_split_test.npy"):
        labels = np.load(ei_dir / name).argmax(1)
        rows = np.stack([labels + 1, np.arange(len(labels)), np.zeros_like(labels), np.full_like(labels, 1000)], 1)
        np.save(ei_dir / name, rows.astype(np.int32))
    structured = load_dataset(ei_dir, defaults())
    assert structured.num_classes == 4 and structured.digest == one_hot_data.digest


def test_built_in_data_is_deterministic_and_balanced() -> None:
    a, b = load_dataset(None, defaults()), load_dataset(None, defaults())
    assert a.digest == b.digest and np.array_equal(a.train.x, b.train.x)
    assert np.bincount(a.val.y).tolist() == [75, 75, 75, 75]
    other = load_dataset(None, {**defaults(), "data_seed": 1})
    assert other.digest != a.digest


def test_built_in_data_is_generated_once_per_cache_folder_and_read_back_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dendrisweep.data import synthetic

    env = {synthetic.DATA_CACHE_ENV: str(tmp_path)}
    first = synthetic.cached_keyword_data(3, 200, env)
    (written,) = tmp_path.glob("keywords-*-3-200.npz")
    monkeypatch.setattr(synthetic, "make_keyword_data", lambda *a: pytest.fail("generated again"))
    again = synthetic.cached_keyword_data(3, 200, env)
    assert all(np.array_equal(a, b) for a, b in zip((first[0].x, first[0].y, first[1].x, first[1].y),
                                                    (again[0].x, again[0].y, again[1].x, again[1].y), strict=True))
    written.write_bytes(b"torn")  # a copy that cannot be read is made again, never trusted
    monkeypatch.undo()
    assert np.array_equal(synthetic.cached_keyword_data(3, 200, env)[0].x, first[0].x)
    assert not list(tmp_path.glob("*.partial.npz"))


def test_without_a_cache_folder_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dendrisweep.data import synthetic

    monkeypatch.chdir(tmp_path)
    synthetic.cached_keyword_data(3, 200, {})
    assert not list(tmp_path.iterdir())


def test_test_hold_out_is_stratified_and_independent_of_the_trial_seed() -> None:
    train, _, _ = make_keyword_data(0)
    keep, test = hold_out(train, 0.1, seed=0)
    assert test is not None and len(test.y) == 120 and np.bincount(test.y).tolist() == [30] * 4
    keep_again, test_again = hold_out(train, 0.1, seed=0)
    assert np.array_equal(test.x, test_again.x)
    assert hold_out(train, 0.0, seed=0) == (train, None)


def test_a_small_project_holds_out_the_floor_and_never_more_than_half() -> None:
    small, _, _ = make_keyword_data(0, train_samples=300)
    _, test = load_dataset_of(small)
    assert len(test.y) == MIN_TEST_SAMPLES  # 20 % of 300 is 60 already
    _, test = load_dataset_of(LabelledArrays(small.x[:160], small.y[:160]))
    assert len(test.y) == pytest.approx(MIN_TEST_SAMPLES, abs=2)  # 37.5 %, rounded per class
    assert held_out_share(0.2, 80) == 0.5 and held_out_share(0.2, 10_000) == 0.2 and held_out_share(0.0, 80) == 0.0


def load_dataset_of(train: LabelledArrays) -> tuple[LabelledArrays, LabelledArrays]:
    keep, test = hold_out(train, held_out_share(0.2, len(train.y)), seed=0)
    assert test is not None
    return keep, test


def _rewrite(name: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        np.save(folder / name, change(np.load(folder / name)))
    return apply


def _set(value: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(x: np.ndarray) -> np.ndarray:
        x = x.copy()
        x[3, 7] = value
        return x
    return change


BAD_DATA = {
    "missing file": ((lambda d: (d / "Y_split_test.npy").unlink()), "lacks Y_split_test.npy"),
    "3-D features": (_rewrite("X_split_train.npy", lambda x: x.reshape(len(x), 50, 13)),
                     "X_split_train.npy: expected a 2-D array"),
    "NaN": (_rewrite("X_split_train.npy", _set(np.nan)), "contains NaN or infinite values (first in sample 3)"),
    "inf": (_rewrite("X_split_test.npy", _set(np.inf)), "X_split_test.npy: contains NaN or infinite values"),
    "fractional labels": (_rewrite("Y_split_train.npy", lambda y: y.argmax(1) + 0.5),
                          "expected integer class labels or one-hot rows"),
    "not one-hot": (_rewrite("Y_split_train.npy", lambda y: y * 2),
                    "row 0 is not one-hot, and the array (4 columns, float32) is not Edge Impulse's structured rows"),
    "class count mismatch": (_rewrite("Y_split_test.npy", lambda y: np.hstack([y, np.zeros((len(y), 1))])),
                             "Y_split_train.npy has 4 classes but Y_split_test.npy has 5"),
    "row count mismatch": (_rewrite("Y_split_train.npy", lambda y: y[:-5]),
                           "X_split_train.npy has 1200 samples but Y_split_train.npy has 1195"),
    "feature width mismatch": (_rewrite("X_split_test.npy", lambda x: x[:, :637]),
                               "X_split_train.npy has 650 features per sample but X_split_test.npy has 637"),
    "not whole frames": ((lambda d: [_rewrite(f, lambda x: x[:, :640])(d) for f in FILES[0::2]]),
                        "640 features per sample is not a whole number of frames of 13 features"),
    "single class": ((lambda d: np.save(d / "Y_split_train.npy", one_hot(np.zeros(1200, int), 4))),
                     "the training split holds a single class"),
    "empty": ((lambda d: [np.save(d / f, np.zeros((0, 650 if f[0] == "X" else 4), np.float32)) for f in FILES]),
              "is empty"),
    "text in a .npy": ((lambda d: (d / "X_split_train.npy").write_text("hello")), "X_split_train.npy: cannot be read"),
    "object array": ((lambda d: np.save(d / "X_split_train.npy", np.array([{"a": 1}] * 3), allow_pickle=True)),
                     "cannot be read as a numeric array"),
}


def exit_code_and_error(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_exits_2_with_one_line_and_writes_nothing(case: str, ei_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    corrupt, message = BAD_DATA[case]
    corrupt(ei_dir)
    out = tmp_path / "out"
    code, err = exit_code_and_error(capsys, "--data-directory", str(ei_dir), "--out-directory", str(out))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err and not out.exists()


def test_too_many_conv_layers_for_the_input_is_a_usage_error(ei_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "short"
    short = LabelledArrays(np.zeros((8, 13 * 3), np.float32), np.arange(8) % 2)
    write_directory(folder, short, short, 2)
    code, err = exit_code_and_error(capsys, "--data-directory", str(folder), "--num-conv-layers", "4",
                                    "--out-directory", str(tmp_path / "out"))
    assert code == 2 and "num_conv_layers=4 pools 3 frames away" in err


def test_retraining_data_is_proven_by_its_digest(ei_dir: Path, tmp_path: Path) -> None:
    config = defaults()
    recorded = load_dataset(ei_dir, config)
    builtin = load_dataset(None, config)
    # the folder given, the recorded folder when this machine has it, the built-in data it trained on
    assert resolve_data(ei_dir, "/elsewhere/data", recorded.digest, config) == ei_dir
    assert resolve_data(None, str(ei_dir), recorded.digest, config) == ei_dir
    assert resolve_data(None, builtin.source, builtin.digest, config) is None
    assert resolve_data(ei_dir, None, None, config) == ei_dir  # nothing recorded: nothing to check


def test_other_data_is_one_line_never_a_fallback(ei_dir: Path) -> None:
    config = defaults()
    recorded = load_dataset(ei_dir, config)
    with pytest.raises(UsageError, match=r"^the sweep trained on /remote/data \(digest \w+\), which this machine "
                                         r"does not have: pass --data-directory"):
        resolve_data(None, "/remote/data", recorded.digest, config)  # never the built-in data instead
    other = load_dataset(None, config)
    with pytest.raises(UsageError, match=rf"^{ei_dir} is not the data the sweep trained on \(digest "
                                         rf"{recorded.digest[:12]}, the sweep's {other.digest[:12]}\)"):
        resolve_data(ei_dir, other.source, other.digest, config)


@pytest.mark.parametrize("width", [13, 26, 32, 40, 65, 1, 3])  # MFCC, MFE, spectrogram, raw signal, 3 axes
def test_any_frame_width_that_divides_the_features_loads(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, width * 10)).astype(np.float32), np.arange(60) % 3
    write_directory(tmp_path, LabelledArrays(x, y), LabelledArrays(x[:12], y[:12]), 3)
    data = load_dataset(tmp_path, {**defaults(), "features_per_frame": width})
    assert data.shape.sample == (width * 10,)


def test_a_frame_width_that_does_not_divide_is_one_line_never_a_fold(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3960)).astype(np.float32), np.arange(40) % 2  # MFE: 40 filters x 99 frames
    write_directory(tmp_path, LabelledArrays(x, y), LabelledArrays(x[:8], y[:8]), 2)
    with pytest.raises(UsageError, match="3960 features per sample is not a whole number of frames of 13 features"):
        load_dataset(tmp_path, defaults())
    data = load_dataset(tmp_path, {**defaults(), "features_per_frame": 40})
    model = build_model({**defaults(), "features_per_frame": 40}, data.shape)
    assert (model.frames, model.coefficients, model.features[0].in_channels) == (99, 40, 40)


def test_the_runners_layout_with_integer_labels_and_no_validation_split(tmp_path: Path) -> None:
    """edge-impulse-blocks runner's files: X_train_features.npy, y_train.npy (1-based labels, as Edge
    Impulse's Keras code reads them); the validation split carved by validation_set_size."""
    rng = np.random.default_rng(1)
    labels = np.arange(100) % 4
    np.save(tmp_path / "X_train_features.npy", rng.normal(size=(100, 26)).astype(np.float32))
    np.save(tmp_path / "y_train.npy", (labels + 1).reshape(-1, 1))
    data = load_dataset(tmp_path, {**defaults(), "validation_set_size": 0.25, "test_fraction": 0.0})
    assert data.num_classes == 4 and len(data.val.y) == 24 and len(data.train.y) == 76
    assert sorted(set(data.train.y.tolist())) == [0, 1, 2, 3]
    np.save(tmp_path / "X_validate_features.npy", rng.normal(size=(8, 26)).astype(np.float32))
    np.save(tmp_path / "y_validate.npy", np.eye(4, dtype=np.float32)[np.arange(8) % 4])
    np.save(tmp_path / "y_train.npy", np.eye(4, dtype=np.float32)[labels])  # one-hot, the other form
    data = load_dataset(tmp_path, {**defaults(), "test_fraction": 0.0})
    assert len(data.val.y) == 8 and len(data.train.y) == 100
