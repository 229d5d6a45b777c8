"""The verdict: its re-runs, and its record.

`analysis verdict` plans which configs (reading the sweeps' trials) and judges them (statistics on
what came back); this package runs them (`run_replicates` hands the controller a `ReplicateSource` and
returns each replicate's settled TrialRecord) and types what the judgement says: `Verdict`, verdict.json
as the report, regenerate and the notebook read it.
"""
from dendrisweep.verdict.record import (
    Comparison,
    Compression,
    ConfigResult,
    EqualSize,
    Estimate,
    FrontPoint,
    Reduction,
    Schedule,
    Scope,
    Studies,
    Verdict,
    read_verdict,
)
from dendrisweep.verdict.replicates import (
    Replicate,
    ReplicatesFailing,
    ReplicateSource,
    run_replicates,
    settled_replicates,
)

__all__ = [
    "Comparison", "Compression", "ConfigResult", "EqualSize", "Estimate", "FrontPoint", "Reduction", "Replicate",
    "ReplicateSource", "ReplicatesFailing", "Schedule", "Scope", "Studies", "Verdict", "read_verdict",
    "run_replicates", "settled_replicates",
]
