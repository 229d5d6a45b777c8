"""dendrisweep: sweep, analyse and export dendritic (perforatedai) edge models.

The flow, top to bottom: a sweep YAML (`dendrisweep.sweep`) -> trials (`dendrisweep.trial`, on
`dendrisweep.data` and `dendrisweep.models`), each ending as one `TrialRecord` -> the study store ->
`analysis` -> verified models (`dendrisweep.deploy`, `dendrisweep.edge_impulse`); the verdict's
re-runs in `dendrisweep.verdict`.

This package's own names are the light ones every layer shares (the trial contract, the settings, the
command-line plumbing, W&B run files); every trial process imports them, so nothing here loads torch,
W&B or Optuna. Heavier entry points live in their packages: `dendrisweep.models.build_model`,
`dendrisweep.trial.checkpoint.load`, `dendrisweep.deploy`, `dendrisweep.sweep`.
"""
__version__ = "0.1.0"  # before the imports: modules they load may read it

from dendrisweep.config import resolve as resolve_config
from dendrisweep.contract import (
    EPOCH_CAP,
    HISTORY_FILE,
    MODEL_FILE,
    RESULT_FILE,
    RESULT_METRICS,
    DataInfo,
    Status,
    TrialRecord,
    is_number,
    pack,
    unpack,
)
from dendrisweep.data import load_dataset, resolve_data
from dendrisweep.errors import ArgumentParser, ExportError, UsageError, cli_errors, positive
from dendrisweep.files import make_dir
from dendrisweep.settings import SETTINGS
from dendrisweep.wandb_files import OfflineRun, find_run_files, read_run_file

__all__ = [
    "EPOCH_CAP", "HISTORY_FILE", "MODEL_FILE", "RESULT_FILE", "RESULT_METRICS", "SETTINGS", "ArgumentParser",
    "DataInfo", "ExportError", "OfflineRun", "Status", "TrialRecord", "UsageError", "__version__", "cli_errors",
    "find_run_files", "is_number", "load_dataset", "make_dir", "pack", "positive", "read_run_file", "resolve_config",
    "resolve_data", "unpack",
]
