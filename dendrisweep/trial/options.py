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
    out_directory: Path  # absolute: where the trial's folder goes
    wandb_project: str
    block_output: Path | None = None  # absolute: a block run's output, the folder Edge Impulse collects
    info: dict[str, Any] = field(default_factory=dict)  # Edge Impulse's train_input.json (--info-file)
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # the input shapes Edge Impulse stated, by source
    layout: tuple[str, str | None] = ("", None)  # the frame layout in words, and its doubt (data/layout.py)
    preemptible: bool = False  # a SIGTERM means preemption (as SIGUSR1 always does): mark preempting, exit 143
    deploy_as: str | None = None  # deploy the best model as `analysis regenerate`'s model of this name

    @property
    def edge_impulse(self) -> bool:
        """A block run (--edge-impulse): the gated model files and the summary go into block_output."""
        return self.block_output is not None
