"""torchvision's MobileNetV3-Small, set up for dendrites and for CPU training.

- BatchNorm momentum 0.1 instead of torchvision's 0.01: with 0.01 the running statistics lag so
  far behind in a short training run that eval-mode accuracy stays at chance for many epochs
  (measured: 10 % vs 90 % after 6 epochs on digits); the weights stay ImageNet-compatible.
- channels_last memory format: faster convolutions on CPU (1.6x per epoch, bench/trial_speed.py).
- Pretrained weights only from a local file (weights_only=True); the classifier's last layer is
  re-initialised when the class count differs. Anything else that does not fit is an error.
- With dendrites on conv layers, each Conv2d + BatchNorm2d pair is wrapped in PAI's PAISequential
  so the dendrite sees the normalised output (PAI cannot wrap a BatchNorm on its own).
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dendrisweep.data.dataset import DataShape
from dendrisweep.errors import UsageError
from dendrisweep.files import load_tensors, require_weights


def _load_pretrained(model: nn.Module, path: Path) -> None:
    require_weights(path)
    state = load_tensors(path, "pretrained_weights")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise UsageError(f"pretrained_weights: {path} holds a {type(state).__name__}, not a state dict")
    own = model.state_dict()
    last = [k for k in own if k.startswith("classifier.3.")]  # the class-count-dependent layer
    misfits = [k for k in own if k in state and state[k].shape != own[k].shape and k not in last]
    missing = [k for k in own if k not in state]
    if misfits or missing:
        example = (misfits or missing)[0]
        raise UsageError(f"pretrained_weights: {path} does not fit MobileNetV3-Small at this width "
                         f"({len(misfits)} tensors of another shape, {len(missing)} missing, e.g. {example})")
    model.load_state_dict({k: v for k, v in state.items()
                           if k in own and (k not in last or v.shape == own[k].shape)}, strict=False)


def build_mobilenet(config: Mapping[str, Any], shape: DataShape) -> nn.Module:
    from torchvision.models import mobilenet_v3_small

    model = mobilenet_v3_small(weights=None, width_mult=config["width_multiplier"], num_classes=shape.classes,
                               dropout=config["dropout"], norm_layer=partial(nn.BatchNorm2d, eps=0.001, momentum=0.1))
    if config["pretrained_weights"]:
        _load_pretrained(model, Path(config["pretrained_weights"]))
    if config["dendrites"] and config["dendrite_layers"] in ("all", "conv"):
        from dendrisweep.pai import pair_conv_with_norm

        pair_conv_with_norm(model)
    return model.to(memory_format=torch.channels_last)
