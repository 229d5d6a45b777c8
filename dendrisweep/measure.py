"""Model size: parameters and multiply-accumulates (MACs) per inference.

MACs are counted with forward hooks on the convolution and dense layers of the inference model,
so a dendrite (a copy of its layer) costs what it really costs at deployment. PAI's inference
modules hold a layer and its dendrite copies in `layer_array` and call the last one through
`.forward` (no hooks fire), so such a group is counted as a whole from its output shape.
"""
from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    """Distinct parameter elements (shared tensors counted once)."""
    unique = {p.data_ptr(): p for p in model.parameters()}
    return sum(p.numel() for p in unique.values())


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):
        return output.numel() // output.shape[0] * module.in_features
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        kernel = 1
        for size in module.kernel_size:
            kernel *= size
        return output.numel() // output.shape[0] * (module.in_channels // module.groups) * kernel
    return 0


_COMPUTE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _members(module: nn.Module) -> list[nn.Module]:
    """A PAI layer group's layers (the layer and its dendrite copies), or the module itself."""
    group = getattr(module, "layer_array", None)
    return list(group.children()) if isinstance(group, nn.Module) else [module]


def _counted_modules(model: nn.Module) -> list[nn.Module]:
    """Plain compute layers, plus PAI layer groups (whose members are then skipped)."""
    groups = [m for m in model.modules() if isinstance(getattr(m, "layer_array", None), nn.Module)]
    inside = {id(layer) for group in groups for layer in _members(group)}
    return groups + [m for m in model.modules() if isinstance(m, _COMPUTE) and id(m) not in inside]


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """MACs for one sample (`example` is a batch of one) through every conv and dense layer."""
    total = 0

    def hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        total += sum(_layer_macs(layer, output) for layer in _members(module))

    handles = [m.register_forward_hook(hook) for m in _counted_modules(model)]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(example)
        model.train(was_training)
    finally:
        for handle in handles:
            handle.remove()
    return total
