"""dendrisweep: sweep, analyse and export dendritic (perforatedai) edge models.

The flow, top to bottom: a sweep YAML (`dendrisweep.sweep`) -> trials (`dendrisweep.trial`, on
`dendrisweep.data` and `dendrisweep.models`), each ending as one `TrialRecord` -> the study store ->
`analysis` -> verified models (`dendrisweep.deploy`, `dendrisweep.edge_impulse`); the verdict's
re-runs in `dendrisweep.verdict`. Names users (and `analysis`) reach for are here too.
"""
from dendrisweep.lazy import lazy_exports

__version__ = "0.1.0"

_all, __getattr__ = lazy_exports(__name__, {
    # the trial contract
    "TrialRecord": "dendrisweep.contract",
    "DataInfo": "dendrisweep.contract",
    "MODEL_FILE": "dendrisweep.contract",
    "HISTORY_FILE": "dendrisweep.contract",
    "RESULT_FILE": "dendrisweep.contract",
    "RESULT_METRICS": "dendrisweep.contract",
    "EPOCH_CAP": "dendrisweep.contract",
    "FINISHED": "dendrisweep.contract",
    "DIVERGED": "dendrisweep.contract",
    "FAILED": "dendrisweep.contract",
    "KILLED": "dendrisweep.contract",
    "STOPPED": "dendrisweep.contract",
    "PREEMPTED": "dendrisweep.contract",
    "PRUNED": "dendrisweep.contract",
    "RUNNING": "dendrisweep.contract",
    "QUEUED": "dendrisweep.contract",
    "is_number": "dendrisweep.contract",
    "pack": "dendrisweep.contract",
    "unpack": "dendrisweep.contract",
    # settings and configs
    "SETTINGS": "dendrisweep.settings",
    "resolve_config": "dendrisweep.config:resolve",
    # data, models, checkpoints, export
    "load_dataset": "dendrisweep.data",
    "resolve_data": "dendrisweep.data",
    "build_model": "dendrisweep.models",
    "load_sweep": "dendrisweep.sweep.spec",
    "load_checkpoint": "dendrisweep.trial.checkpoint:load",
    "export_onnx": "dendrisweep.export",
    # W&B run files, read without a server
    "OfflineRun": "dendrisweep.wandb_files",
    "find_run_files": "dendrisweep.wandb_files",
    "read_run_file": "dendrisweep.wandb_files",
    # command-line plumbing every entry point shares
    "UsageError": "dendrisweep.errors",
    "ExportError": "dendrisweep.errors",
    "ArgumentParser": "dendrisweep.errors",
    "cli_errors": "dendrisweep.errors",
    "positive": "dendrisweep.errors",
    "make_dir": "dendrisweep.files",
    "lazy_exports": "dendrisweep.lazy",
})
__all__ = ["__version__", *_all]
