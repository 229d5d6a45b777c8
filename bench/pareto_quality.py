"""Pareto search quality: the hypervolume of the accuracy-vs-size front found in 40 trials, over 20 seeds.

Which Optuna sampler finds the best front on a small budget? A problem is a function of an Optuna trial
that suggests its parameters and returns (accuracy, cost), made once per seed (PROBLEMS; a real one, e.g.
training the quickstart network, plugs in beside the synthetic one). The synthetic problem has the shape
of a dendritic sweep: dendrites on/off, how many (1-8), a log-uniform learning rate and a width; dendrites
cost parameters but buy more accuracy per parameter; the best learning rate moves with the width; the
accuracy is noisy (sd 1 pp), and the samplers are scored on the noisy values they saw, as a report would.

Compared: TPE (Optuna's default sampler, also for multi-objective studies, where it is independent unless
told multivariate), the GP sampler (log expected hypervolume improvement), NSGA-II at its default
population (50: random search for the first 50 trials) and at 10, random search, and TPE told the accuracy
alone (its trials' sizes still count for the hypervolume). Every study's front is scored against one
reference point, derived by analysis/pareto.py's rule from all the studies' fronts (the report's rule, cost
in decades), so the numbers compare across samplers within one run of this script, as ratios to random
search in the same run. Hypervolumes differ by little (every front holds some cheap models, and the area
they cover is much the same), so the table also gives each sampler's gap to the best-known front (all the
studies' points together): the part of the attainable area it missed.

    python bench/pareto_quality.py [--trials 40] [--seeds 20] [--samplers tpe gp ...] [--problem synthetic]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, RandomSampler, TPESampler
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.pareto import front_hypervolume, shared_reference
from analysis.rank import pareto_front
from dendrisweep import FINISHED
from dendrisweep.sweep.storage import quiet_optuna

Objective = Callable[[optuna.Trial], tuple[float, float]]  # a trial -> (accuracy, cost)

SAMPLERS: dict[str, Callable[[int], BaseSampler]] = {
    "tpe": lambda seed: TPESampler(seed=seed),
    "tpe-multivariate": lambda seed: TPESampler(seed=seed, multivariate=True),
    "gp": lambda seed: GPSampler(seed=seed),
    "nsga2": lambda seed: NSGAIISampler(seed=seed),
    "nsga2-pop10": lambda seed: NSGAIISampler(seed=seed, population_size=10),
    "random": lambda seed: RandomSampler(seed=seed),
    "tpe-accuracy": lambda seed: TPESampler(seed=seed),
}
SINGLE_OBJECTIVE = {"tpe-accuracy"}  # told the accuracy only
LABELS = {"tpe": "TPE, multi-objective (Optuna's default)", "tpe-multivariate": "TPE, multivariate",
          "gp": "GP (logEHVI)",
          "nsga2": "NSGA-II (population 50, default)", "nsga2-pop10": "NSGA-II (population 10)",
          "random": "random", "tpe-accuracy": "TPE on accuracy alone"}
REFERENCE = "random"


def synthetic(seed: int) -> Objective:
    """Accuracy vs parameters of a small network, with and without dendrites (noise drawn from `seed`)."""
    noise = np.random.default_rng(seed)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        dendrites = trial.suggest_categorical("dendrites", [False, True])
        count = trial.suggest_int("max_dendrites", 1, 8)  # swept either way, as a flat sweep does
        lr = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        width = trial.suggest_float("width_multiplier", 0.25, 2.0)
        grown = count if dendrites else 0
        params = 20_000 * width**2 * (1 + 0.5 * grown)  # a dendrite copies half a layer's weights...
        capacity = width**2 * (1 + 0.9 * grown)  # ... and buys more than a wider layer would
        best_log_lr = -2.5 - 0.3 * math.log2(width) - 0.1 * grown  # larger models want a smaller rate
        accuracy = (0.55 + 0.4 * (1 - math.exp(-capacity / 0.6)) - 0.06 * (math.log10(lr) - best_log_lr) ** 2
                    + noise.normal(0, 0.01))
        return min(max(accuracy, 0.0), 1.0), params

    return objective


PROBLEMS: dict[str, Callable[[int], Objective]] = {"synthetic": synthetic}


def search(sampler: str, problem: Callable[[int], Objective], seed: int, trials: int) -> pd.DataFrame:
    """One study: every trial's (accuracy, cost), as a frame analysis/rank.py can take a front of."""
    single = sampler in SINGLE_OBJECTIVE
    study = optuna.create_study(directions=["maximize"] if single else ["maximize", "minimize"],
                                sampler=SAMPLERS[sampler](seed))
    objective, points = problem(seed), []
    for _ in range(trials):
        trial = study.ask()
        accuracy, cost = objective(trial)
        study.tell(trial, accuracy if single else (accuracy, cost))
        points.append((accuracy, cost))
    accuracy, cost = np.array(points).T
    return pd.DataFrame({"state": FINISHED, "objective": accuracy, "accuracy": accuracy, "cost": cost})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--samplers", nargs="+", choices=list(SAMPLERS), default=list(SAMPLERS))
    parser.add_argument("--problem", choices=list(PROBLEMS), default="synthetic")
    opts = parser.parse_args()
    quiet_optuna()
    warnings.filterwarnings("ignore")  # experimental-feature warnings, one per study
    fronts: dict[str, list[pd.DataFrame]] = {}
    seconds: dict[str, float] = {}
    with tqdm(total=len(opts.samplers) * opts.seeds, desc="studies", unit="study") as progress:
        for sampler in opts.samplers:
            progress.set_postfix_str(sampler)
            started, fronts[sampler] = time.perf_counter(), []
            for seed in range(opts.seeds):
                found = search(sampler, PROBLEMS[opts.problem], seed, opts.trials)
                fronts[sampler].append(pareto_front(found, "cost", "accuracy"))
                progress.update()
            seconds[sampler] = (time.perf_counter() - started) / opts.seeds
    everything = [front for runs in fronts.values() for front in runs]
    reference = shared_reference(everything, "cost", "accuracy")
    best_known = front_hypervolume(pareto_front(pd.concat(everything), "cost", "accuracy"), reference, "cost",
                                   "accuracy")
    volumes = {s: np.array([front_hypervolume(f, reference, "cost", "accuracy") for f in runs])
               for s, runs in fronts.items()}
    print(f"\nHypervolume of the front found in {opts.trials} trials over {opts.seeds} seeds, problem {opts.problem} "
          f"(larger is better); reference point: accuracy {reference.accuracy:.4f}, cost {reference.cost:,.0f} "
          f"(cost in decades). Gap: the median's shortfall from the best-known front, all studies' points together "
          f"({best_known:.4f}; smaller is better).\n")
    print(f"| sampler | median | IQR | x {REFERENCE} | gap | gap x {REFERENCE} | s per study |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    base = float(np.median(volumes[REFERENCE])) if REFERENCE in volumes else None
    for sampler, hv in volumes.items():
        q1, median, q3 = np.percentile(hv, [25, 50, 75])
        gap = best_known - median
        versus = ("", "") if base is None else (f"{median / base:.3f}", f"{gap / (best_known - base):.2f}")
        print(f"| {LABELS[sampler]} | {median:.4f} | {q1:.4f}-{q3:.4f} | {versus[0]} | {gap:.4f} | {versus[1]} | "
              f"{seconds[sampler]:.2f} |")


if __name__ == "__main__":
    main()
