"""Run a sweep: the same W&B sweep YAML, offline with Optuna or on W&B.

    python agent.py sweeps/quickstart.yaml                    # offline, SQLite under runs/quickstart/
    python agent.py sweeps/kws_dendrites.yaml --workers 2 --storage postgresql://user@host/db
    python agent.py sweeps/kws_dendrites.yaml --wandb         # wandb sweep + wandb agent
    python agent.py sync runs/quickstart --project P          # offline runs -> one W&B sweep
"""
from dendrisweep.sweep.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
