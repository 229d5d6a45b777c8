"""The best model of a trial on disk: state dict + resolved config, loadable with weights_only=True.

A dendritic model is rebuilt by wrapping a fresh network with PAI and letting PAI replay the
dendrite structure from the state dict, so no pickled code is ever loaded.
"""
from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dendrisweep import pai
from dendrisweep.data import DataShape
from dendrisweep.errors import UsageError
from dendrisweep.files import load_tensors
from dendrisweep.models import build_model

FORMAT = "dendrisweep-checkpoint-1"


def save(path: Path, model: nn.Module, config: Mapping[str, Any], shape: DataShape,
         dendrites: int) -> None:
    """Write the checkpoint: tensors and plain values only."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}  # loads anywhere
    torch.save({"format": FORMAT, "config": dict(config), "shape": asdict(shape), "dendrites_added": dendrites,
                "state_dict": state}, path)


def load(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint in eval mode; returns (model, config)."""
    payload = load_tensors(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UsageError(f"checkpoint: {path} is not a dendrisweep checkpoint")
    config = payload["config"]
    shape = payload["shape"]
    model = build_model(config, DataShape(tuple(shape["sample"]), shape["classes"]))
    if config["dendrites"]:
        with tempfile.TemporaryDirectory() as scratch, pai.working_directory(Path(scratch)):
            model = pai.load_state(pai.wrap(model, config), payload["state_dict"])
    else:
        model.load_state_dict(payload["state_dict"])
    return model.eval(), config
