"""One trial: the program every sweep agent and Edge Impulse runs (`train_trial.py`).

Read top to bottom: `cli` (argv -> options + resolved config) -> `run` (data, model, W&B run,
result.json) -> `trainer` (the loop) -> `checkpoint` (the best model on disk) and `tracking` (W&B).
"""
from dendrisweep.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "main": "dendrisweep.trial.cli",  # train_trial.py: argv in, exit code out
    "TrialOptions": "dendrisweep.trial.options",
    "run_trial": "dendrisweep.trial.run",
    "train": "dendrisweep.trial.trainer",
    "load_checkpoint": "dendrisweep.trial.checkpoint:load",  # a trial's best_model.pt, rebuilt
})
