"""Sweeps: a W&B sweep YAML -> an Optuna study whose trials are train_trial.py (or any program's) processes.

Read top to bottom: `spec` (the YAML, checked) -> `space` and `samplers` (what to try next) ->
`controller` (claim -> `launch` -> `settle` -> record, per worker, from a source of claims) ->
`storage` (the study, its records, heartbeats, lost trials) -> `audit` (the study checked against its
files). `retrain` runs chosen configs now, as the agent would.
"""
from dendrisweep.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "main": "dendrisweep.sweep.cli",  # agent.py
    "DEFAULT_RUNS_DIR": "dendrisweep.sweep.cli",
    "parse_gpus": "dendrisweep.sweep.cli",
    "load_sweep": "dendrisweep.sweep.spec",
    "parse_sweep": "dendrisweep.sweep.spec",
    "runs_our_program": "dendrisweep.sweep.spec",
    "SweepSpec": "dendrisweep.sweep.spec",
    "differences": "dendrisweep.sweep.spec",
    "nest": "dendrisweep.sweep.wandb_params",
    "make_sampler": "dendrisweep.sweep.samplers",
    "AgentOptions": "dendrisweep.sweep.controller",
    "Controller": "dendrisweep.sweep.controller",
    "SweepSource": "dendrisweep.sweep.controller",
    "open_storage": "dendrisweep.sweep.storage",
    "default_storage_url": "dendrisweep.sweep.storage",
    "load_study": "dendrisweep.sweep.storage",
    "read_trials": "dendrisweep.sweep.storage",
    "stored_record": "dendrisweep.sweep.storage",
    "redact": "dendrisweep.sweep.storage",
    "quiet_optuna": "dendrisweep.sweep.storage",
    "audit_study": "dendrisweep.sweep.audit",
    "retrain": "dendrisweep.sweep.retraining",
})
