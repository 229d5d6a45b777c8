"""Analysis of sweeps: load trials into pandas, rank and plot them, regenerate and export the best model.

    python -m analysis report sweeps/quickstart.yaml          # -> reports/quickstart/report.html
    python -m analysis verdict sweeps/quickstart.yaml --baseline sweeps/quickstart_baseline.yaml
                                                              # -> reports/quickstart/verdict.json
    python -m analysis regenerate sweeps/quickstart.yaml      # -> artifacts/quickstart/comparison.md

In a notebook: `from analysis import open_source, best, pareto_front, read_verdict` (see
notebooks/analysis.ipynb). The report, the verdict's statistics and regenerate are submodules
(`analysis.report`, `analysis.verdict`, `analysis.regenerate`): they load plotting and deployment.
"""
from analysis.load import Trials, from_offline_runs, from_wandb_sweep, learning_curves, open_source, read_study
from analysis.pareto import compare_fronts, families, hypervolume
from analysis.rank import best, direction, finished, importance, pareto_front, smallest_within
from dendrisweep.verdict import Verdict, read_verdict

__all__ = [
    "Trials", "Verdict", "best", "compare_fronts", "direction", "families", "finished", "from_offline_runs",
    "from_wandb_sweep", "hypervolume", "importance", "learning_curves", "open_source", "pareto_front",
    "read_study", "read_verdict", "smallest_within",
]
