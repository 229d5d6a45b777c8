"""Sweeps: a W&B sweep YAML -> an Optuna study whose trials are train_trial.py (or any program's) processes.

Read top to bottom: `spec` (the YAML, checked) -> `space` and `samplers` (what to try next) ->
`controller` (claim -> launch -> `settle` -> record, per worker, from a source of claims) -> `storage`
(the study, its records, heartbeats, lost trials) -> `audit` (the study checked against its files).
Trials run through a `Launcher` (`launcher`; `launch.LocalLauncher`: processes on this machine). `retrain`
runs chosen configs now, as the agent would. agent.py's command line is `dendrisweep.sweep.cli`.
"""
from dendrisweep.sweep.audit import audit_study
from dendrisweep.sweep.cli import DEFAULT_RUNS_DIR, parse_gpus
from dendrisweep.sweep.controller import AgentOptions, Controller, SweepSource
from dendrisweep.sweep.launch import Job, LocalLauncher, TrialFiles
from dendrisweep.sweep.launcher import Launcher
from dendrisweep.sweep.retraining import retrain
from dendrisweep.sweep.samplers import make_sampler
from dendrisweep.sweep.settle import offline_state, study_status, wandb_status
from dendrisweep.sweep.spec import SweepSpec, differences, load_sweep, parse_sweep, runs_our_program
from dendrisweep.sweep.storage import (
    default_storage_url,
    load_study,
    open_storage,
    quiet_optuna,
    read_trials,
    redact,
    stored_record,
)
from dendrisweep.sweep.wandb_params import nest

__all__ = [
    "DEFAULT_RUNS_DIR", "AgentOptions", "Controller", "Job", "Launcher", "LocalLauncher", "SweepSource", "SweepSpec",
    "TrialFiles", "audit_study", "default_storage_url", "differences", "load_study", "load_sweep", "make_sampler",
    "nest", "open_storage", "parse_gpus", "parse_sweep", "quiet_optuna", "read_trials", "redact", "retrain",
    "offline_state", "runs_our_program", "stored_record", "study_status", "wandb_status",
]
