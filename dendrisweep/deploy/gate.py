"""The deployment gate: an exported model must keep its accuracy through the chain Edge Impulse runs.

onnxruntime agreeing with PyTorch (onnx_export.check_parity) is not enough: the int8 TFLite model the
device runs is one conversion further down the road, where a model can lose its accuracy silently.
So the pipeline (pipeline.py) converts each exported model (tflite.py) and scores both files with
LiteRT on held-out rows; `judge` then decides, from the probabilities alone. ExportError, naming the
model and the numbers, when:
- float32 TFLite scores a different accuracy than onnxruntime, or any probability differs by more
  than onnx_export.PROB_TOLERANCE;
- int8 TFLite is shown to lose more than `int8_tolerance_pp` points against float32: judged on the
  paired predictions (the two files on the same samples), so that a few flipped samples of a small
  held-out split are not mistaken for a loss: the loss is (float32 right, int8 wrong) minus (the
  reverse) over n, with an exact (Clopper-Pearson) one-sided 95 % bound from the discordant pairs.
  Clearly above the tolerance fails, clearly within passes, in between ships with a warning;
- int8 TFLite answers at chance or with one class for every sample while float32 does not (a
  collapsed model: it fails whatever the sample size);
- a converter or the interpreter fails (in a child process: an abort becomes the message).
"""
from __future__ import annotations

import numpy as np

from dendrisweep.deploy.onnx_export import PROB_TOLERANCE, accuracy
from dendrisweep.errors import ExportError

CONFIDENCE = 0.95  # one-sided, for the int8 loss's bounds


def _clopper_pearson(k: int, n: int, alpha: float) -> tuple[float, float]:
    """Exact one-sided (1 - alpha) bounds of a binomial proportion k / n."""
    from scipy.stats import beta

    low = float(beta.ppf(alpha, k, n - k + 1)) if k > 0 else 0.0
    high = float(beta.ppf(1 - alpha, k + 1, n - k)) if k < n else 1.0
    return low, high


def int8_loss_bounds(fp32_right: np.ndarray, int8_right: np.ndarray) -> tuple[float, float, float]:
    """(loss, lower, upper) of float32's accuracy minus int8's on the same samples, as fractions, each bound
    one-sided at CONFIDENCE. b: samples only float32 gets right, c: only int8; loss = (b - c) / n.
    Lower: exact on b of the b + c discordant pairs (McNemar's conditional test), scaled by (b + c) / n.
    Upper: the exact upper bound of b / n, since the loss is never more than the share int8 alone gets
    wrong (a conditional upper bound misses on small splits: the number of discordant pairs varies)."""
    n = len(fp32_right)
    b, c = int((fp32_right & ~int8_right).sum()), int((~fp32_right & int8_right).sum())
    alpha = 1 - CONFIDENCE
    high = _clopper_pearson(b, n, alpha)[1]
    if b + c == 0:
        return 0.0, 0.0, high
    return (b - c) / n, (b + c) / n * (2 * _clopper_pearson(b, b + c, alpha)[0] - 1), high


def _collapsed(probabilities: np.ndarray, y: np.ndarray) -> bool:
    """One class for every sample, or no better than guessing the commonest class."""
    predicted = probabilities.argmax(axis=1)
    chance = np.bincount(y).max() / len(y)
    return bool(len(np.unique(predicted)) == 1 or accuracy(probabilities, y) <= chance)


def _judge_int8(name: str, fp32: np.ndarray, int8: np.ndarray, y: np.ndarray, tolerance_pp: float) -> str | None:
    """ExportError when int8 is shown to lose more than the tolerance or has collapsed; a warning when
    the held-out samples cannot tell; None when the loss is clearly within the tolerance."""
    fp32_acc, int8_acc = accuracy(fp32, y), accuracy(int8, y)
    loss, low, high = int8_loss_bounds(fp32.argmax(axis=1) == y, int8.argmax(axis=1) == y)
    numbers = (f"TFLite int8 scores {int8_acc:.4f} on {len(y)} held-out samples, {loss * 100:.1f} pp below float32 "
               f"({fp32_acc:.4f}; one-sided 95 % bounds {low * 100:+.1f} to {high * 100:+.1f} pp)")
    if _collapsed(int8, y) and not _collapsed(fp32, y):
        raise ExportError(f"{name}: {numbers}: the int8 model answers at chance or with one class for every "
                          "sample: the model a device runs would be useless")
    if low * 100 > tolerance_pp:
        raise ExportError(f"{name}: {numbers}; the tolerance is {tolerance_pp:g} pp (int8_tolerance_pp): the "
                          "model a device runs would lose it")
    if high * 100 > tolerance_pp:
        return (f"{name}: {numbers}: {len(y)} held-out samples cannot tell whether the loss is within the "
                f"{tolerance_pp:g} pp tolerance; shipped, check it on more data")
    return None


def judge(name: str, reference: np.ndarray, fp32: np.ndarray, int8: np.ndarray | None, y: np.ndarray,
          int8_tolerance_pp: float) -> str | None:
    """The gate's decision from the probabilities of onnxruntime (`reference`), TFLite float32 and int8
    (None: no int8 file) on the same held-out rows (`y`: their labels): ExportError when the deployed
    model would differ; a warning when int8 ships but its loss is not clearly within the tolerance."""
    onnx_acc, fp32_acc = accuracy(reference, y), accuracy(fp32, y)
    diff = float(np.abs(fp32 - reference).max())
    if fp32_acc != onnx_acc or diff > PROB_TOLERANCE:
        raise ExportError(f"{name}: TFLite float32 scores {fp32_acc:.4f} where onnxruntime scores "
                          f"{onnx_acc:.4f} on {len(y)} held-out samples, max |delta prob| {diff:.2e} "
                          f"(limit {PROB_TOLERANCE:g})")
    return None if int8 is None else _judge_int8(name, fp32, int8, y, int8_tolerance_pp)
