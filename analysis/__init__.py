"""Analysis of sweeps: load trials into pandas, rank and plot them, regenerate and export the best model.

    python -m analysis report sweeps/quickstart.yaml          # -> reports/quickstart/report.html
    python -m analysis verdict sweeps/quickstart.yaml --baseline sweeps/quickstart_baseline.yaml
                                                              # -> reports/quickstart/verdict.json
    python -m analysis regenerate sweeps/quickstart.yaml      # -> artifacts/quickstart/comparison.md

In a notebook: `from analysis import read_study, best, pareto_front` (see notebooks/analysis.ipynb).
"""
from dendrisweep import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    # trials -> one DataFrame, from any source
    "read_study": "analysis.load",
    "from_offline_runs": "analysis.load",
    "from_wandb_sweep": "analysis.load",
    "open_source": "analysis.load",
    "learning_curves": "analysis.load",
    # rankings
    "finished": "analysis.rank",
    "best": "analysis.rank",
    "pareto_front": "analysis.rank",
    "smallest_within": "analysis.rank",
    "importance": "analysis.rank",
    "direction": "analysis.rank",
    "row_config": "analysis.rank",
    # both families' fronts: hypervolumes, the compression question
    "compare_fronts": "analysis.pareto",
    "families": "analysis.pareto",
    "hypervolume": "analysis.pareto",
    # outputs
    "build_sections": "analysis.report",
    "write_report": "analysis.report",
    "regenerate": "analysis.regenerate",
    # the verdict: replicates and their statistics
    "run_verdict": "analysis.verdict:run",
    "read_verdict": "analysis.verdict:read",
})
