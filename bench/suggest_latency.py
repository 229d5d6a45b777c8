"""Milliseconds per suggestion with 50 / 200 / 800 finished trials in the study, for each sampler.

Studies are filled through the real storage API with trials over the search space of
sweeps/kws_dendrites.yaml (synthetic values). Two measurements per cell:
- suggestion: the sampler's own cost, `study.ask()` on an in-memory study (the target:
  default <= 50 ms at 800 finished trials);
- on SQLite: what the agent pays to start a trial on its default store, opened as the agent opens
  it (Optuna writes each of the 12 parameters in its own commit).
Random sampling is the in-run reference (no model, storage only).

    python bench/suggest_latency.py [--sizes 50 200 800] [--repeats 5]
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic_params import random_params

from dendrisweep.sweep.samplers import SAMPLERS, make_sampler
from dendrisweep.sweep.space import search_space
from dendrisweep.sweep.spec import load_sweep
from dendrisweep.sweep.storage import (
    open_storage,
    quiet_optuna,
)

ROOT = Path(__file__).resolve().parents[1]


def synthetic_trials(n: int, space: dict, seed: int) -> list[optuna.trial.FrozenTrial]:
    """n finished trials with random parameters and a smooth synthetic accuracy."""
    rng = random.Random(seed)
    trials = []
    for _ in range(n):
        params = random_params(space, rng)
        value = 0.9 - 0.05 * abs(math.log10(params["learning_rate"]) + 2.7) + 0.01 * params["max_dendrites"]
        trials.append(optuna.trial.create_trial(params=params, distributions=space, value=value + rng.gauss(0, 0.01)))
    return trials


def time_suggestions(storage: optuna.storages.BaseStorage, trials: list, sampler_name: str, spec, space: dict,
                     repeats: int) -> float:
    study = optuna.create_study(storage=storage, study_name="bench", direction="maximize",
                                sampler=make_sampler(sampler_name, spec, seed=0))
    study.add_trials(trials)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        trial = study.ask(space)
        times.append(time.perf_counter() - started)
        study.tell(trial, 0.5)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samplers", nargs="+", default=[s for s in SAMPLERS if s != "grid"])
    opts = parser.parse_args()
    quiet_optuna()
    warnings.filterwarnings("ignore")
    spec = load_sweep(ROOT / "sweeps" / "kws_dendrites.yaml")
    space = search_space(spec)
    results: dict[str, dict[str, dict[int, float]]] = {where: {s: {} for s in opts.samplers}
                                                        for where in ("memory", "sqlite")}
    with tempfile.TemporaryDirectory() as tmp:
        for size in opts.sizes:
            trials = synthetic_trials(size, space, seed=size)
            for sampler in opts.samplers:
                memory = optuna.storages.InMemoryStorage()
                sqlite = open_storage(f"sqlite:///{Path(tmp) / f'{sampler}-{size}.db'}")
                for where, storage in (("memory", memory), ("sqlite", sqlite)):
                    results[where][sampler][size] = time_suggestions(storage, trials, sampler, spec, space,
                                                                     opts.repeats)
                print(f"  {sampler:<12} {size:>4} finished: {results['memory'][sampler][size]:8.1f} ms "
                      f"(SQLite {results['sqlite'][sampler][size]:8.1f} ms)", file=sys.stderr)
    for where, title in (("memory", "suggestion (sampler cost, in-memory study)"),
                         ("sqlite", "ask on the agent's SQLite store (sampler + 12 parameter writes)")):
        table = results[where]
        print(f"\n{title}: ms, median of {opts.repeats}; x = ratio to random in the same run")
        print(f"{'sampler':<16}" + "".join(f"{f'{n} done':>20}" for n in opts.sizes))
        for sampler in opts.samplers:
            cells = "".join(f"{table[sampler][n]:>10.1f} ({table[sampler][n] / table['random'][n]:>5.1f}x)"
                            for n in opts.sizes)
            print(f"{sampler + (' (default)' if sampler == 'auto' else ''):<16}{cells}")
    biggest = max(opts.sizes)
    value = results["memory"]["auto"][biggest]
    print(f"\ndefault sampler at {biggest}: {value:.1f} ms per suggestion "
          f"({'meets' if value <= 50 else 'MISSES'} the 50 ms target)")


if __name__ == "__main__":
    main()
