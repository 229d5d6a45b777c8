"""Model construction from a resolved config and the data's shape."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from dendrisweep.data.dataset import DataShape
from dendrisweep.models.kws import KeywordSpottingNet
from dendrisweep.models.mobilenet import build_mobilenet


def build_model(config: Mapping[str, Any], shape: DataShape) -> nn.Module:
    """The network a config describes, sized to the data (input shape, class count)."""
    if config["task"] == "mobilenet":
        return build_mobilenet(config, shape)
    return KeywordSpottingNet(
        frames=shape.features // config["features_per_frame"],
        coefficients=config["features_per_frame"],
        classes=shape.classes,
        width=config["width_multiplier"],
        conv_layers=config["num_conv_layers"],
        dropout=config["dropout"],
    )
