"""Model construction from a resolved config and the data's shape."""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from dendrisweep.data import DataShape
from dendrisweep.models.kws import KeywordSpottingNet


def build_model(config: Mapping[str, Any], shape: DataShape) -> nn.Module:
    """The network a config describes, sized to the data (input length, class count)."""
    return KeywordSpottingNet(
        frames=shape.frames,
        coefficients=shape.coefficients,
        classes=shape.classes,
        width=config["width_multiplier"],
        conv_layers=config["num_conv_layers"],
        dropout=config["dropout"],
    )
