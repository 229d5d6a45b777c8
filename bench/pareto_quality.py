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

The real problem, kws-table, is tabular (NAS-Bench's approach: 20 seeds x 7 samplers of real training is out
of reach): each configuration of a small grid (GRID: dendrites x width x learning rate, 24 in all) is trained
once, for real, by train_trial.py's own code in this process, on the built-in keyword data with quickstart-like
settings (TABLE_SETTINGS: 12 epochs for every trial; a dendritic one adds its one dendrite after 6), and the
samplers search that table as categorical parameters. Accuracy is the trial's best_val_acc; cost is PAI's
parameter count, not the int8 flash, which would take a ~40 CPU s conversion per model. The table is cached in
runs/bench/ under a hash of the grid and settings (10 s a trial on 2 idle CPU cores; 27 min beside a CI job).
Its budget is 16 trials: 40 would enumerate the grid and every sampler would find the whole front, and at 12
TPE, GP and NSGA-II (population 10) would differ from random search in two trials only (all start with 10
random ones).

    python bench/pareto_quality.py [--trials N] [--seeds 20] [--samplers tpe gp ...] [--problem synthetic kws-table]
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.samplers import BaseSampler, GPSampler, NSGAIISampler, RandomSampler, TPESampler
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis.pareto import front_hypervolume, shared_reference
from analysis.rank import pareto_front
from dendrisweep import Status
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


GRID: dict[str, list[Any]] = {"dendrites": [False, True], "width_multiplier": [0.25, 0.5, 1.0, 2.0],
                              "learning_rate": [0.001, 0.003, 0.01]}
# sweeps/quickstart.yaml's data and patience, with a fixed 12-epoch budget on both sides: the baseline's patience
# outlasts the cap, and PAI adds its one dendrite after epoch 6 and finishes at epoch 12.
TABLE_SETTINGS: dict[str, Any] = {"builtin_samples": 3000, "epochs": 12, "scheduler_patience": 3,
                                  "n_epochs_to_switch": 12, "switch_mode": "fixed", "fixed_switch_num": 6,
                                  "max_dendrites": 1, "max_dendrite_tries": 1, "device": "cpu", "log_model": "off"}
TABLE_DIR = Path(__file__).resolve().parents[1] / "runs" / "bench"


def train_once(config: dict[str, Any]) -> dict[str, Any]:
    """One real trial, run by train_trial.py's main() here, without W&B; its result.json."""
    from dendrisweep.trial.cli import main as train_trial

    flags = [str(part) for name, value in config.items() for part in ("--" + name, value)]
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stdout(io.StringIO()) as log:
        code = train_trial([*flags, "--out-directory", out])
        results = list(Path(out).glob("trial-*/result.json"))
        if code != 0 or not results:
            raise RuntimeError(f"trial {config} exited {code}:\n{log.getvalue()[-2000:]}")
        return dict(json.loads(results[0].read_text()))


@functools.cache
def kws_table() -> dict[tuple[Any, ...], tuple[float, float]]:
    """(dendrites, width, rate) -> (best_val_acc, params), each configuration trained once; cached on disk."""
    spec = json.dumps({"grid": GRID, "settings": TABLE_SETTINGS}, sort_keys=True)
    path = TABLE_DIR / f"pareto_table-{hashlib.sha256(spec.encode()).hexdigest()[:12]}.json"
    if not path.exists():
        os.environ["WANDB_MODE"] = "disabled"
        started, rows = time.perf_counter(), []
        for values in tqdm(list(product(*GRID.values())), desc="kws table", unit="trial"):
            config = dict(zip(GRID, values, strict=True))
            result = train_once({**TABLE_SETTINGS, **config})
            rows.append({**config, "accuracy": result["best_val_acc"], "params": result["params"],
                         "dendrites_added": result["dendrites_added"], "seconds": round(result["wall_seconds"], 1)})
        TABLE_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**json.loads(spec), "build_seconds": round(time.perf_counter() - started),
                                    "rows": rows}, indent=1))
    table = json.loads(path.read_text())
    return {tuple(row[name] for name in GRID): (row["accuracy"], row["params"]) for row in table["rows"]}


def kws(seed: int) -> Objective:
    """The keyword-spotting table, searched by lookup (each configuration's score is fixed: `seed` is unused)."""
    table = kws_table()

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        return table[tuple(trial.suggest_categorical(name, values) for name, values in GRID.items())]

    return objective


def print_table() -> None:
    """The kws table, one row per width and rate, as the report shows it."""
    table = kws_table()
    print("\nkws-table: best validation accuracy / PAI parameter count (not int8 flash) of each configuration, "
          f"trained once ({', '.join(f'{k} {v}' for k, v in TABLE_SETTINGS.items())}).\n")
    print("| width | rate | baseline | dendrites |\n|---:|---:|---:|---:|")
    for width, rate in product(GRID["width_multiplier"], GRID["learning_rate"]):
        cells = [f"{acc:.3f} / {params:,.0f}" for acc, params in (table[d, width, rate] for d in GRID["dendrites"])]
        print(f"| {width} | {rate} | {' | '.join(cells)} |")


PROBLEMS: dict[str, Callable[[int], Objective]] = {"synthetic": synthetic, "kws-table": kws}
TRIALS = {"synthetic": 40, "kws-table": 16}  # default budgets: kws-table's grid holds 24 points


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
    return pd.DataFrame({"state": Status.FINISHED, "objective": accuracy, "accuracy": accuracy, "cost": cost})


def compare(problem: str, trials: int, seeds: int, samplers: list[str]) -> None:
    """Every sampler's studies on one problem, and the table of their hypervolumes."""
    fronts: dict[str, list[pd.DataFrame]] = {}
    seconds: dict[str, float] = {}
    with tqdm(total=len(samplers) * seeds, desc=f"{problem} studies", unit="study") as progress:
        for sampler in samplers:
            progress.set_postfix_str(sampler)
            started, fronts[sampler] = time.perf_counter(), []
            for seed in range(seeds):
                found = search(sampler, PROBLEMS[problem], seed, trials)
                fronts[sampler].append(pareto_front(found, "cost", "accuracy"))
                progress.update()
            seconds[sampler] = (time.perf_counter() - started) / seeds
    everything = [front for runs in fronts.values() for front in runs]
    reference = shared_reference(everything, "cost", "accuracy")
    best_known = front_hypervolume(pareto_front(pd.concat(everything), "cost", "accuracy"), reference, "cost",
                                   "accuracy")
    volumes = {s: np.array([front_hypervolume(f, reference, "cost", "accuracy") for f in runs])
               for s, runs in fronts.items()}
    print(f"\nHypervolume of the front found in {trials} trials over {seeds} seeds, problem {problem} "
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help=f"trials per study (default: {TRIALS})")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--samplers", nargs="+", choices=list(SAMPLERS), default=list(SAMPLERS))
    parser.add_argument("--problem", nargs="+", choices=list(PROBLEMS), default=["synthetic"])
    opts = parser.parse_args()
    quiet_optuna()
    warnings.filterwarnings("ignore")  # experimental-feature warnings, one per study
    for problem in opts.problem:
        if problem == "kws-table":
            print_table()
        compare(problem, opts.trials or TRIALS[problem], opts.seeds, opts.samplers)


if __name__ == "__main__":
    main()
