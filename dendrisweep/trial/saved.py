"""A trial's saved best model deployed after the fact, for a model that exists only as its file (a W&B run's
logged model, downloaded by `analysis regenerate`); a trial deploys its own model as it finishes (run.py).
Light to import: torch and the model code load when a model is deployed."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dendrisweep.deploy import Deployed, Policy, deploy

if TYPE_CHECKING:
    from dendrisweep.data import Dataset


def deploy_saved(checkpoint_path: Path, data_directory: Path | None, out_dir: Path,
                 policy: Policy) -> tuple[Deployed, Dataset]:
    """The checkpoint's model (best_model.pt, rebuilt on the CPU) deployed on the data its config names;
    also returns that data (its digest says whether it is the data the trial trained on)."""
    from dendrisweep.data import load_dataset
    from dendrisweep.trial import checkpoint
    from dendrisweep.trial.trainer import strategy_for

    model, config = checkpoint.load(checkpoint_path)
    data = load_dataset(data_directory, config)
    return deploy(model, strategy_for(config).inference_model(model), data, out_dir, policy), data
