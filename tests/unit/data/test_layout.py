"""The frame layout: what Edge Impulse states decides, a contradiction is an error, a default that other
standard layouts also fit is said aloud."""
from __future__ import annotations

import pytest

from dendrisweep.data.layout import frame_layout, parse_shape
from dendrisweep.errors import UsageError

SPECTROGRAM = 50 * 65  # 3,250 features: also 250 frames of 13


def test_a_2d_input_shape_decides_the_frame_width() -> None:
    layout = frame_layout(13, 13, [("--input-shape", (50, 65))])
    assert layout.width == 65 and not layout.from_default
    assert layout.describe(SPECTROGRAM) == "50 frames x 65 features (from --input-shape (50, 65))"
    assert layout.doubt(SPECTROGRAM) is None


def test_a_flat_input_shape_says_nothing_about_frames() -> None:
    assert frame_layout(13, 13, [("--input-shape", (3250,))]).from_default


def test_a_parameter_that_contradicts_the_shape_is_an_error() -> None:
    with pytest.raises(UsageError, match=r"features_per_frame 26 contradicts --input-shape \(50, 65\)"):
        frame_layout(26, 13, [("--input-shape", (50, 65))])


def test_two_stated_shapes_that_disagree_are_an_error() -> None:
    with pytest.raises(UsageError, match="disagree on the frame width"):
        frame_layout(13, 13, [("--input-shape", (49, 26)), ("train_input.json's inputShapeString", (50, 65))])


def test_a_parameter_set_away_from_its_default_is_used_and_named() -> None:
    layout = frame_layout(26, 13, [])
    assert (layout.width, layout.source, layout.from_default) == (26, "the parameter features_per_frame", False)
    assert layout.doubt(49 * 26) is None


def test_the_default_deciding_a_spectrogram_is_doubted_with_the_other_fits_named() -> None:
    doubt = frame_layout(13, 13, []).doubt(SPECTROGRAM)
    assert doubt is not None and "spectrogram (FFT length 128: 65 bins): 50 x 65" in doubt
    assert "set features_per_frame" in doubt


def test_the_default_with_no_other_standard_fit_is_not_doubted() -> None:
    assert frame_layout(13, 13, []).doubt(49 * 13) is None  # 637 features: MFCC only


@pytest.mark.parametrize("text", ["(a, b)", "()", "(0, 13)"])
def test_a_malformed_shape_is_one_line(text: str) -> None:
    with pytest.raises(UsageError, match="^--input-shape: expected"):
        parse_shape(text, "--input-shape")
