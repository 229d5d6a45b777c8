"""Analysis of sweeps: load trials into pandas, rank and plot them, regenerate and export the best model.

    python -m analysis report sweeps/quickstart.yaml          # -> reports/quickstart/report.html
    python -m analysis regenerate sweeps/quickstart.yaml      # -> artifacts/quickstart/comparison.md

In a notebook: `from analysis.load import read_study` (see notebooks/analysis.ipynb).
"""
