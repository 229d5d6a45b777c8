"""Train one trial: the program every sweep agent (ours or `wandb agent`) and Edge Impulse runs.

    python train_trial.py --max-dendrites 2 --learning-rate 0.003
    python train_trial.py --config best_config.yaml --print-config
"""
from dendrisweep.trial.cli import cli

if __name__ == "__main__":
    cli()
