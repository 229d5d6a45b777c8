"""Edge Impulse's default keyword-spotting network, in PyTorch.

Reshape(frames, features per frame: 13 MFCC coefficients by default) -> [Conv1D(k3, same) -> ReLU ->
MaxPool1D(2, same) -> Dropout] x N -> Flatten -> Dense(classes). Channels start at 8 and double per
block (8, 16, ...), scaled by the width multiplier. The network returns logits; the softmax Edge
Impulse expects is added at export.

Keras' `padding="same"` pool on an odd length is written as an explicit zero pad plus an ordinary
pool, never `ceil_mode=True`: converters turn a ceil-mode pool into a pad filled with float32's
lowest value (-3.4e38), which int8 calibration takes into the tensor's range, collapsing the
quantized model to one constant output (Edge Impulse's int8 deployment did exactly that). After a
ReLU every value is >= 0, so padding with 0 gives the same maximum: the outputs are identical, and
the pad has no parameters, so checkpoints from before still load.
"""
from __future__ import annotations

import torch
from torch import nn

from dendrisweep.errors import UsageError

BASE_CHANNELS = 8


def _pooled(frames: int, blocks: int) -> int:
    for _ in range(blocks):
        frames = (frames + 1) // 2  # Keras padding="same"
    return frames


def same_max_pool(length: int) -> nn.Module:
    """MaxPool1D(2, padding="same") for non-negative inputs of `length` frames, converter-safe."""
    if length % 2 == 0:
        return nn.MaxPool1d(2)
    return nn.Sequential(nn.ConstantPad1d((0, 1), 0.0), nn.MaxPool1d(2))


class KeywordSpottingNet(nn.Module):
    """Conv1D keyword spotter over flat features, frame after frame, `coefficients` each (MFCC coefficients,
    MFE filters, spectrogram bins, signal axes: the input channels)."""

    def __init__(self, frames: int, coefficients: int, classes: int, width: float = 1.0,
                 conv_layers: int = 2, dropout: float = 0.25) -> None:
        super().__init__()
        if _pooled(frames, conv_layers - 1) < 2:
            raise UsageError(f"num_conv_layers={conv_layers} pools {frames} frames away; "
                             "use fewer conv layers")
        self.frames, self.coefficients = frames, coefficients
        blocks: list[nn.Module] = []
        channels_in = coefficients
        for i in range(conv_layers):
            channels = max(1, round(BASE_CHANNELS * (2 ** i) * width))
            blocks += [nn.Conv1d(channels_in, channels, kernel_size=3, padding=1), nn.ReLU(),
                       same_max_pool(_pooled(frames, i)), nn.Dropout(dropout)]
            channels_in = channels
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(channels_in * _pooled(frames, conv_layers), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.frames, self.coefficients).transpose(1, 2)
        return self.classifier(self.features(x).flatten(1))
