"""deploy/gate.py's decision on canned probabilities, and deploy/guard.py's refusals on hand-made graphs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dendrisweep.data.load import MIN_TEST_SAMPLES
from dendrisweep.deploy.gate import int8_loss_bounds, judge
from dendrisweep.deploy.guard import check_convertible, problems
from dendrisweep.deploy.onnx_export import accuracy
from dendrisweep.errors import ExportError

Y = np.array([0, 1, 2, 3] * 10)  # 40 held-out samples, 4 classes


def probabilities(correct: int, noise: float = 0.0) -> np.ndarray:
    """One-hot-ish rows for Y: the first `correct` samples right, the rest off by one class."""
    predicted = np.where(np.arange(len(Y)) < correct, Y, (Y + 1) % 4)
    rows = np.full((len(Y), 4), 0.1) + np.eye(4)[predicted] * 0.6
    return rows + noise


def test_the_same_answers_in_every_format_pass() -> None:
    reference, fp32, int8 = probabilities(36), probabilities(36, 1e-6), probabilities(35)
    judge("m.onnx", reference, fp32, int8, Y, int8_tolerance_pp=5.0)  # ships: no ExportError
    assert (accuracy(reference, Y), accuracy(fp32, Y), accuracy(int8, Y)) == (0.9, 0.9, 0.875)
    assert np.abs(fp32 - reference).max() == pytest.approx(1e-6)


def test_float32_tflite_must_score_what_onnxruntime_scores() -> None:
    with pytest.raises(ExportError, match=r"m\.onnx: TFLite float32 scores 0\.8750 where onnxruntime scores 0\.9000 "
                                          r"on 40 held-out samples"):
        judge("m.onnx", probabilities(36), probabilities(35), None, Y, 5.0)


def test_float32_probabilities_must_agree_within_the_tolerance() -> None:
    with pytest.raises(ExportError, match=r"max \|delta prob\| 1\.00e-03 \(limit 0\.0001\)"):
        judge("m.onnx", probabilities(36), probabilities(36, 1e-3), None, Y, 5.0)


def test_int8_more_than_the_tolerance_below_float32_fails_with_its_numbers() -> None:
    with pytest.raises(ExportError) as failure:
        judge("kws.onnx", probabilities(36), probabilities(36), probabilities(30), Y, int8_tolerance_pp=1.5)
    message = str(failure.value)
    assert message.startswith("kws.onnx: TFLite int8 scores 0.7500 on 40 held-out samples, 15.0 pp below float32")
    assert "the tolerance is 1.5 pp (int8_tolerance_pp)" in message


def test_no_int8_file_is_judged_on_float32_alone() -> None:
    assert judge("m.onnx", probabilities(36), probabilities(36), None, Y, 0.0) is None  # a 0 pp tolerance unused


def _graph_with(node: onnx.NodeProto, *initializers: onnx.TensorProto, shape: list[int | str]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph([node], "g", [x], [y], initializer=list(initializers)))


@pytest.mark.parametrize("value", [-np.inf, np.inf, -3.4028235e38, np.nan])
def test_a_pad_with_an_extreme_constant_is_refused(value: float) -> None:
    pads = helper.make_tensor("pads", TensorProto.INT64, [6], [0, 0, 0, 0, 0, 1])
    constant = helper.make_tensor("value", TensorProto.FLOAT, [], [value])
    model = _graph_with(helper.make_node("Pad", ["input", "pads", "value"], ["output"], name="pad"),
                        pads, constant, shape=["batch", 8, 7])
    (problem,) = problems(model)
    assert problem.startswith("Pad node 'pad' pads with") and "collapses" in problem


def test_a_zero_pad_and_a_fixed_shape_pass_but_other_symbolic_dims_do_not(tmp_path: Path) -> None:
    pads = helper.make_tensor("pads", TensorProto.INT64, [6], [0, 0, 0, 0, 0, 1])
    zero = helper.make_tensor("value", TensorProto.FLOAT, [], [0.0])
    pad = helper.make_node("Pad", ["input", "pads", "value"], ["output"], name="pad")
    assert problems(_graph_with(pad, pads, zero, shape=["batch", 8, 7])) == []
    dynamic = _graph_with(pad, pads, zero, shape=["batch", 8, "frames"])
    onnx.save(dynamic, str(tmp_path / "dynamic.onnx"))
    with pytest.raises(ExportError, match=r"'input' has symbolic dimension\(s\) \[2\] besides the batch axis"):
        check_convertible(tmp_path / "dynamic.onnx")


def paired(n: int, flipped: int, classes: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, float32 probabilities all right, int8 probabilities with `flipped` samples wrong)."""
    y = np.arange(n) % classes
    right = np.eye(classes)[y] * 0.6 + 0.1
    wrong = np.eye(classes)[(y + 1) % classes] * 0.6 + 0.1
    return y, right, np.where((np.arange(n) < flipped)[:, None], wrong, right)


def test_one_flipped_sample_of_thirty_ships_with_a_warning_not_a_failure() -> None:
    y, fp32, int8 = paired(30, 1)  # 3.3 pp on paper, above 1.5: 30 samples cannot tell
    warning = judge("m.onnx", fp32, fp32, int8, y, int8_tolerance_pp=1.5)
    assert accuracy(int8, y) == pytest.approx(29 / 30)
    assert warning is not None and "30 held-out samples cannot tell" in warning
    assert warning.startswith("m.onnx: TFLite int8 scores 0.9667 on 30 held-out samples, 3.3 pp below float32")


def test_a_clear_loss_on_many_samples_fails() -> None:
    y, fp32, int8 = paired(1000, 50)  # 5 pp on 1,000 samples
    with pytest.raises(ExportError, match="5.0 pp below float32"):
        judge("m.onnx", fp32, fp32, int8, y, int8_tolerance_pp=1.5)


@pytest.mark.parametrize("collapse", ["constant", "chance"])
def test_a_collapsed_int8_model_fails_on_any_sample_size(collapse: str) -> None:
    y, fp32, _ = paired(12, 0)
    int8 = (np.tile(np.eye(4)[0], (12, 1)) if collapse == "constant"
            else np.eye(4)[np.where(np.arange(12) < 3, y, (y + 1) % 4)])  # 3 of 12 right: the commonest class's rate
    with pytest.raises(ExportError, match="answers at chance or with one class for every sample"):
        judge("m.onnx", fp32, fp32, int8, y, int8_tolerance_pp=50.0)


def test_the_int8_loss_bounds_hold_their_confidence_by_simulation() -> None:
    """Paired samples with a known loss (4 % flipped one way, 1 % the other: 3 pp): each one-sided bound
    misses the truth at most 5 % of the time, at a small and a larger held-out split."""
    rng = np.random.default_rng(0)
    for n in (60, 400):
        misses_low = misses_high = 0
        for _ in range(2000):
            kind = rng.choice(3, size=n, p=[0.04, 0.01, 0.95])  # b: float32 only right, c: int8 only, both
            fp32_right, int8_right = kind != 1, kind != 0
            _, low, high = int8_loss_bounds(fp32_right, int8_right)
            misses_low += low > 0.03
            misses_high += high < 0.03
        assert misses_low / 2000 <= 0.055 and misses_high / 2000 <= 0.055, (n, misses_low, misses_high)


def test_the_held_out_floor_is_the_fewest_samples_on_which_a_10_pp_int8_loss_fails() -> None:
    def verdict(n: int) -> str:
        y = np.arange(n) % 4
        right, flipped = np.eye(4)[y], np.eye(4)[np.where(np.arange(n) < n // 10, (y + 1) % 4, y)]
        try:
            warning = judge("m.onnx", right, right, flipped, y, int8_tolerance_pp=1.5)
        except ExportError:
            return "fails"
        return "warns" if warning else "passes"

    assert verdict(MIN_TEST_SAMPLES) == "fails" and verdict(MIN_TEST_SAMPLES - 10) == "warns"
