"""Which frame width folds a flat feature vector into frames, and where that width came from.

Edge Impulse hands a learning block one flat vector per sample (frame after frame). The width of a frame
is the processing block's (MFCC coefficients, MFE filters, spectrogram bins, axes) and the vector alone
cannot tell it: a 50x65 spectrogram (3,250 features) folds into 13-wide frames as readily as into
65-wide ones, and the wrong fold still trains. So the width comes from what Edge Impulse states (a 2-D
input shape), else from the parameter, and a width the parameter's default decided is said aloud when
another standard layout fits too.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dendrisweep.errors import UsageError

# Edge Impulse's standard frame widths, by processing block (their defaults and common settings).
STANDARD_WIDTHS = {13: "MFCC (13 coefficients)", 32: "MFE (32 filters)", 40: "MFE (40 filters)",
                   65: "spectrogram (FFT length 128: 65 bins)", 129: "spectrogram (FFT length 256: 129 bins)"}


@dataclass(frozen=True)
class FrameLayout:
    """The frame width a trial folds its features with, and what decided it."""

    width: int
    source: str  # "--input-shape (50, 65)", "the parameter features_per_frame", ...
    from_default: bool = False  # nothing stated it: the parameter's default decided

    def describe(self, features: int) -> str:
        """'50 frames x 65 features (from --input-shape (50, 65))'."""
        return f"{features // self.width} frames x {self.width} features (from {self.source})"

    def doubt(self, features: int) -> str | None:
        """When the default decided and other standard layouts also divide `features`: the warning naming
        them (None otherwise)."""
        others = [f"{name}: {features // width} x {width}" for width, name in STANDARD_WIDTHS.items()
                  if width != self.width and features % width == 0]
        if not self.from_default or not others:
            return None
        return (f"the frame width {self.width} is the default of features_per_frame, and {features} features also "
                f"fold as {'; '.join(others)}. If your processing block is one of these, set features_per_frame "
                "(Edge Impulse states no 2-D input shape here)")


def parse_shape(text: str, what: str) -> tuple[int, ...]:
    """'(1, 4, 2)' or '(650,)', as Edge Impulse writes an input shape; `what` names it in the error."""
    try:
        shape = tuple(int(part) for part in str(text).strip().strip("()[]").split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{what}: expected a tuple of integers such as \"(1, 4, 2)\", got {text!r}") from None
    if not shape or min(shape) < 1:
        raise UsageError(f"{what}: expected positive dimensions, got {text!r}")
    return shape


def frame_layout(value: int, default: int, shapes: Sequence[tuple[str, tuple[int, ...]]]) -> FrameLayout:
    """The layout from the parameter's `value` and the input shapes Edge Impulse stated (`shapes`: where
    each came from, the shape). A 2-D (or deeper) shape's last dimension is the frame width; it decides
    unless the parameter was set to something else, which is a contradiction (UsageError), never a silent
    pick. The parameter at its default counts as unset: Studio passes every UI parameter, set or not."""
    stated = [(source, shape) for source, shape in shapes if len(shape) >= 2]
    widths = {shape[-1] for _, shape in stated}
    if len(widths) > 1:
        raise UsageError("Edge Impulse's input shapes disagree on the frame width: "
                         + ", ".join(f"{source} {shape}" for source, shape in stated))
    if stated:
        source, shape = stated[0]
        if value not in (default, shape[-1]):
            raise UsageError(f"features_per_frame {value} contradicts {source} {shape}, whose frames are "
                             f"{shape[-1]} features wide: set features_per_frame to {shape[-1]} or leave its default")
        return FrameLayout(shape[-1], f"{source} {shape}")
    if value != default:
        return FrameLayout(value, "the parameter features_per_frame")
    return FrameLayout(value, f"the default of features_per_frame ({default}); no 2-D input shape was given",
                       from_default=True)
