"""What a trial runs with besides its config: the options the CLI parsed, handed down to the runner."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrialOptions:
    """What to run, as opposed to how to train (that is the config)."""

    cli_values: dict[str, Any]
    config_file: Path | None
    print_config: bool
    data_directory: Path | None
    out_directory: Path  # absolute
    wandb_project: str
    edge_impulse: bool = False  # also write model.onnx + summary into out_directory (the block's output)
    info: dict[str, Any] = field(default_factory=dict)  # Edge Impulse's train_input.json (--info-file)
    preemptible: bool = False  # a SIGTERM means preemption: mark the W&B run preempting, exit 143 (also: Slurm)
    deploy_as: str | None = None  # deploy the best model as `analysis regenerate`'s model of this name
