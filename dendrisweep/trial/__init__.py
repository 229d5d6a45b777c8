"""One trial: the program every sweep agent and Edge Impulse runs (`train_trial.py`).

Read top to bottom: `cli` (argv -> options + resolved config; `cli.cli` is train_trial.py) -> `run` (data,
model, W&B run, result.json) -> `trainer` (the loop) -> `checkpoint` (the best model on disk:
`checkpoint.load(path)` rebuilds it) and `tracking` (W&B).

The package re-exports only `deploy_saved` (`saved`: a saved best model deployed, which analysis'
regenerate needs): each of the others loads torch or W&B, and what imports this package (the agent,
analysis) must not pay for them. Import the module you need.
"""
from dendrisweep.trial.saved import deploy_saved

__all__ = ["deploy_saved"]
