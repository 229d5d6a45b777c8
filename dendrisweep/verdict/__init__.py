"""The verdict's re-runs: chosen configs trained again with fresh seeds, through the agent's own loop.

`analysis verdict` plans which configs (reading the sweeps' trials) and judges them (statistics on
what came back); this package runs them: `run_replicates` hands the controller a `ReplicateSource`
and returns each replicate's settled TrialRecord.
"""
from dendrisweep.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "Replicate": "dendrisweep.verdict.replicates",
    "ReplicateSource": "dendrisweep.verdict.replicates",
    "ReplicatesFailing": "dendrisweep.verdict.replicates",
    "run_replicates": "dendrisweep.verdict.replicates",
    "settled_replicates": "dendrisweep.verdict.replicates",
})
