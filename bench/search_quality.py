"""Search quality: best value found in 40 trials, over 20 seeds, on a synthetic objective.

The objective has the shape of our space: log learning rate, integer dendrites (1-8), a 3-way
categorical (forward function) and a float (dropout); its optimum is 0 (so the best value found is
the regret). Compared: our default sampler (auto), TPE, W&B's own bayes engine (the `sweeps`
package its server runs) and random search. Target: default mean regret <= 0.5x W&B bayes.

    python bench/search_quality.py [--trials 40] [--seeds 20]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dendrisweep.sweep.samplers import make_sampler
from dendrisweep.sweep.space import search_space
from dendrisweep.sweep.spec import parse_sweep
from dendrisweep.sweep.storage import quiet_optuna

SWEEP = {
    "program": "train_trial.py", "method": "bayes", "metric": {"name": "val_loss", "goal": "minimize"},
    "parameters": {
        "learning_rate": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-2},
        "max_dendrites": {"distribution": "int_uniform", "min": 1, "max": 8},
        "pai_forward_function": {"values": ["sigmoid", "relu", "tanh"]},
        "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
    },
}
FORWARD_PENALTY = {"sigmoid": 0.0, "relu": 0.15, "tanh": 0.3}


def objective(p: dict) -> float:
    """Interactions as in real sweeps: the best learning rate moves with the dendrite count, the
    best dropout with the forward function. Minimum 0 at 5 dendrites, lr 10^-2.6, sigmoid, 0.1."""
    best_log_lr = -2.6 + 0.1 * (p["max_dendrites"] - 5)
    best_dropout = 0.1 if p["pai_forward_function"] == "sigmoid" else 0.3
    return (2 * (math.log10(p["learning_rate"]) - best_log_lr) ** 2 + 0.03 * (p["max_dendrites"] - 5) ** 2
            + FORWARD_PENALTY[p["pai_forward_function"]] + 3 * (p["dropout"] - best_dropout) ** 2)


def best_found(sampler_name: str, seed: int, trials: int) -> float:
    spec = parse_sweep(SWEEP, Path("synthetic.yaml"))
    np.random.seed(seed)  # W&B's engine draws from numpy's global generator
    study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler_name, spec, seed=seed))
    space = search_space(spec)
    for _ in range(trials):
        trial = study.ask(space)
        study.tell(trial, objective(trial.params))
    return study.best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--samplers", nargs="+", default=["auto", "tpe", "wandb-bayes", "random"])
    opts = parser.parse_args()
    quiet_optuna()
    warnings.filterwarnings("ignore")
    found = {}
    for sampler in opts.samplers:
        found[sampler] = [best_found(sampler, seed, opts.trials) for seed in range(opts.seeds)]
        print(f"  {sampler}: done", file=sys.stderr)
    reference = statistics.mean(found["wandb-bayes"]) if "wandb-bayes" in found else None
    print(f"best value after {opts.trials} trials (optimum 0), mean +- sd over {opts.seeds} seeds")
    print(f"{'sampler':<22}{'mean':>10}{'sd':>10}{'x W&B bayes':>14}")
    for sampler, values in found.items():
        mean, sd = statistics.mean(values), statistics.stdev(values)
        ratio = f"{mean / reference:>14.2f}" if reference else ""
        print(f"{sampler + (' (default)' if sampler == 'auto' else ''):<22}{mean:>10.2e}{sd:>10.2e}{ratio}")
    if reference:
        ratio = statistics.mean(found["auto"]) / reference
        print(f"default / W&B bayes mean regret: {ratio:.3f} ({'meets' if ratio <= 0.5 else 'MISSES'} the 0.5 target)")


if __name__ == "__main__":
    main()
