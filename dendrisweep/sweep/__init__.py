"""Sweeps: a W&B sweep YAML -> an Optuna study whose trials are train_trial.py processes.

Read top to bottom: `spec` (the YAML, checked) -> `space` and `samplers` (what to try next) ->
`controller` (claim -> `launch` -> record, per worker; `replicates`: the same loop re-running chosen
configs with fresh seeds) -> `storage` (the study, heartbeats, lost
trials) -> `audit` (the study checked against its files).
"""
from dendrisweep.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "main": "dendrisweep.sweep.cli",  # agent.py
    "load_sweep": "dendrisweep.sweep.spec",
    "SweepSpec": "dendrisweep.sweep.spec",
    "make_sampler": "dendrisweep.sweep.samplers",
    "AgentOptions": "dendrisweep.sweep.controller",
    "Controller": "dendrisweep.sweep.controller",
    "ReplicateController": "dendrisweep.sweep.replicates",
    "open_storage": "dendrisweep.sweep.storage",
    "audit_study": "dendrisweep.sweep.audit",
})
