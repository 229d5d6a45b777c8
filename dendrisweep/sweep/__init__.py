"""Sweeps: a W&B sweep YAML -> an Optuna study whose trials are train_trial.py processes."""
