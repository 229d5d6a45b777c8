"""The verdict: is the dendritic model better than the baseline, by how much, how sure, at what cost.

One sweep trial per side is mostly noise, and the best of many noisy trials is flattered by its
selection (the winner's curse). So:
1. plan: the top K configs of each sweep by the sweep's metric (the same K on both sides: the headline's
   candidates), plus the configs the secondary questions need: for each dendritic one the best baseline
   with at least as many parameters (is it the dendrites or just size?), and up to K dendritic configs
   smaller than the best baseline and near it on validation (compression);
2. choose: every planned config re-trained with N seeds (1000, 1001, ...: weight init and batch order;
   the data split stays fixed), run by the library (dendrisweep.verdict) through the agent's own loop;
   per family the candidate with the best mean of the sweep's validation metric;
3. estimate: a pick made among several is re-trained with N fresh seeds (2000, ...), so its estimate is
   not flattered by its own choice; every comparison is on the held-out test split;
4. decide (analysis/stats.py): the difference with both sources of noise, seeds and test examples
   (paired: both sides scored the same examples), its interval and p at the schedule's level; the error
   reduction from the same interval; P(dendritic > baseline); power for a declared effect. The headline
   is the primary claim; equal size and compression are secondary (Holm), compression tested in a fixed
   sequence from the largest smaller config down;
5. verdict.json, whose `statement` never claims a winner its interval does not support.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import stats
from analysis.load import META
from analysis.pareto import cost_axes
from analysis.rank import BASELINE, DENDRITIC, finished, pareto_front, row_config
from dendrisweep import EPOCH_CAP, DataInfo, Status, TrialRecord, is_number, unpack
from dendrisweep.sweep import Launcher, SweepSpec, differences, nest
from dendrisweep.verdict import (
    Comparison,
    Compression,
    ConfigResult,
    EqualSize,
    Estimate,
    FrontPoint,
    Reduction,
    Replicate,
    Schedule,
    Scope,
    Studies,
    Verdict,
    read_verdict,
)

FIRST_SEED = 1000  # the choice's seeds: 1000, 1001, ... (sweep trials use the `seed` setting, 0 by default)
FRESH_SEED = 2000  # the estimate's seeds, when the choice was among several: 2000, 2001, ...
MIN_EFFECT = 0.10  # the smallest error reduction worth finding, unless declared otherwise (--min-effect)
VERDICT_FILE = "verdict.json"


@dataclass(frozen=True)
class Family:
    """One side of the comparison: a sweep's trials and the sweep that launches them."""

    name: str  # DENDRITIC or BASELINE
    study: str
    df: pd.DataFrame
    spec: SweepSpec


@dataclass(frozen=True)
class Candidate:
    """A sweep trial whose config gets replicated."""

    family: str
    trial: int | None
    run_id: str
    why: str
    recorded: float  # the sweep's metric, as the sweep recorded it
    params: int | None
    config: dict[str, Any]  # without the seed
    sweep_seed: Any  # the seed the sweep trial had (regenerate retrains with it)
    headline: bool = False  # one of its family's top K: a candidate for the headline comparison
    front_cost: tuple[str, float] | None = None  # a member of its family's Pareto front: (cost axis, its cost)

    @property
    def label(self) -> str:
        return f"{self.family} trial {self.trial if self.trial is not None else self.run_id}"


def seeds(n: int, first: int = FIRST_SEED) -> list[int]:
    return list(range(first, first + n))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def trial_config(row: pd.Series, spec: SweepSpec) -> dict[str, Any]:
    """The config a trial trained with, without its seed: for train_trial.py every registry setting (so a
    replicate cannot drift with a default), for another program its own parameters (nested again)."""
    if spec.ours:
        config = row_config(row)
    else:
        flat = {tuple(str(k).split(".")): (v.item() if hasattr(v, "item") else v)
                for k, v in row.items() if k not in META and not _missing(v)}
        config = nest(flat)
    config.pop("seed", None)
    return config


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def eligible(df: pd.DataFrame, include_capped: bool = False) -> pd.DataFrame:
    """The finished trials a verdict may choose from: a trial the epoch cap stopped before training was
    complete stands for an unfinished schedule, not for its config, unless asked for."""
    done = finished(df)
    return done if include_capped else done[done["stop_reason"] != EPOCH_CAP]


def plan(dendritic: Family, baseline: Family, top: int, within_pp: float,
         include_capped: bool = False, front: int = 0) -> list[Candidate]:
    """The configs to replicate, each once (see the module's docstring for which and why); with `front`, also
    that many members of each family's Pareto front (accuracy vs flash, else parameters), spread along it."""
    maximize = dendritic.spec.maximize
    chosen: dict[str, Candidate] = {}

    def add(family: Family, row: pd.Series, why: str, headline: bool = False,
            front_cost: tuple[str, float] | None = None) -> Candidate:
        config = trial_config(row, family.spec)
        key = family.name + _key(config)
        if key not in chosen or (headline and not chosen[key].headline):
            params = None if _missing(row["params"]) else int(row["params"])
            seed = row.get("seed")
            previous = chosen.get(key)
            chosen[key] = Candidate(family.name, None if _missing(row["trial"]) else int(row["trial"]),
                                    str(row["run_id"]), previous.why if previous else why, float(row["objective"]),
                                    params, config,
                                    None if _missing(seed) else (seed.item() if hasattr(seed, "item") else seed),
                                    headline or (previous is not None and previous.headline),
                                    front_cost or (previous.front_cost if previous is not None else None))
        elif front_cost is not None and chosen[key].front_cost is None:
            chosen[key] = replace(chosen[key], front_cost=front_cost)
        return chosen[key]

    def ranked(family: Family) -> pd.DataFrame:
        return eligible(family.df, include_capped).sort_values("objective", ascending=not maximize, kind="stable")

    tops: dict[str, list[Candidate]] = {}
    for family in (dendritic, baseline):
        picked: list[Candidate] = []
        for _, row in ranked(family).iterrows():
            if len(picked) == top:
                break
            candidate = add(family, row, f"top {len(picked) + 1} of its sweep", headline=True)
            if candidate not in picked:  # a config the sweep ran twice counts once
                picked.append(candidate)
        tops[family.name] = picked
    base = ranked(baseline)
    for candidate in tops[DENDRITIC]:  # the same size or larger: is it the dendrites, or the parameters?
        if candidate.params is None:
            continue
        larger = base[(base["params"] >= candidate.params).fillna(False)]
        if not larger.empty:
            add(baseline, larger.iloc[0], f"best baseline with >= the parameters of {candidate.label}")
    if not base.empty and not base["best_val_acc"].isna().all() and not _missing(base.iloc[0]["params"]):
        for row in _compression_ladder(eligible(dendritic.df, include_capped), base.iloc[0], within_pp, top):
            add(dendritic, row, f"smaller than the best baseline, within {within_pp:g} pp of it in the sweep")
    if front:
        for family in (dendritic, baseline):
            pool = eligible(family.df, include_capped)
            cost = (cost_axes(pool) or ["params"])[0]
            members = front_members(pool, cost, front)
            for i, row in enumerate(members):
                add(family, row, f"Pareto front member {i + 1} of {len(members)} by {cost}",
                    front_cost=(cost, float(row[cost])))
    return list(chosen.values())


def front_members(df: pd.DataFrame, cost: str, count: int) -> list[pd.Series]:
    """Up to `count` members of the accuracy-vs-`cost` Pareto front, spread along it from the cheapest to
    the most accurate (both ends kept)."""
    front = pareto_front(df, cost)
    picks = sorted({round(i * (len(front) - 1) / max(1, count - 1)) for i in range(min(count, len(front)))})
    return [front.iloc[i] for i in picks]


def _compression_ladder(dendritic: pd.DataFrame, best_baseline: pd.Series, within_pp: float,
                        count: int) -> list[pd.Series]:
    """Up to `count` dendritic trials with fewer parameters than the best baseline and within `within_pp` of it
    on validation, from the largest to the smallest size (the order compression is tested in)."""
    pool = dendritic.dropna(subset=["params", "best_val_acc"])
    pool = pool[(pool["params"] < best_baseline["params"])
                & (pool["best_val_acc"] >= float(best_baseline["best_val_acc"]) - within_pp / 100)]
    sizes = pool.sort_values(["params", "best_val_acc"], ascending=[False, False]).drop_duplicates("params")
    if sizes.empty:
        return []
    picks = sorted({round(i * (len(sizes) - 1) / max(1, count - 1)) for i in range(min(count, len(sizes)))})
    return [sizes.iloc[i] for i in picks]


def replicate_key(candidate: Candidate, seed: int) -> str:
    return f"{candidate.family}-{candidate.run_id}-seed{seed}"


def replicates(candidates: Sequence[Candidate], seed_values: Sequence[int], study: str,
               resample_split: bool = False) -> list[Replicate]:
    """Every candidate with every seed; one W&B group per config. `resample_split`: each replicate also
    draws its own data split (train_trial.py's data_seed), for data where a new split is possible."""
    return [Replicate(replicate_key(c, s), c.family, f"{study}:{c.family}-{c.run_id}",
                      {**c.config, "seed": s, **({"data_seed": s} if resample_split else {})})
            for c in candidates for s in seed_values]


@dataclass
class Measured:
    """A candidate's replicates on one set of seeds, as they came back."""

    candidate: Candidate
    seeds: list[int]  # of the replicates that finished
    test: stats.Sample
    objective: stats.Sample  # the sweep's metric over the replicates
    outcomes: stats.Outcomes  # per-seed test accuracies, and per-example correctness when the trials saved it
    params: int | None
    macs: int | None
    runs: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "run id: status: reason"
    dendrites: int | None = None  # dendrites the replicates' best models kept (median)
    fresh: bool = False  # measured on fresh seeds, after its choice
    objective_values: list[float] = field(default_factory=list)

    @property
    def test_values(self) -> list[float]:
        return [float(v) for v in self.outcomes.accuracies]


def _median(values: list[Any]) -> int | None:
    numbers = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    return int(numbers[len(numbers) // 2]) if numbers else None


def _correctness(records: Sequence[TrialRecord]) -> tuple[np.ndarray | None, str]:
    """Seeds x examples, 0/1, and the split's identity, when every replicate saved its predictions on one and
    the same split (else None: with another split per replicate, --resample-split, examples cannot pair)."""
    splits = {(r.data.digest, r.test_labels) for r in records}
    if not records or any(r.test_predictions is None for r in records) or len(splits) != 1:
        return None, ""
    digest, labels = splits.pop()
    if labels is None:
        return None, ""
    truth = unpack(labels)
    correct = np.stack([unpack(str(r.test_predictions)) == truth for r in records]).astype(float)
    return correct, f"{digest}:{hashlib.sha256(labels.encode()).hexdigest()[:16]}"


def measure(candidates: Sequence[Candidate], seed_values: Sequence[int], records: Mapping[str, TrialRecord],
            fresh: bool = False) -> list[Measured]:
    """Each candidate's settled replicates (`records`, by replicate key) on `seed_values`: finished ones
    measured, the others listed with their reason."""
    measured = []
    for c in candidates:
        done = {s: records[replicate_key(c, s)] for s in seed_values if replicate_key(c, s) in records}
        ok = {s: r for s, r in done.items() if r.status == Status.FINISHED and is_number(r.test_acc)}
        test = [float(r.test_acc) for r in ok.values() if r.test_acc is not None]
        objective = [float(r.objective) for r in ok.values() if r.objective is not None]
        measured.append(Measured(
            c, list(ok), stats.describe(test), stats.describe(objective),
            stats.Outcomes.of(test, *_correctness(list(ok.values()))),
            _median([r.params for r in ok.values()]) if ok else c.params, _median([r.macs for r in ok.values()]),
            [str(r.run_id) for r in ok.values()],
            [f"{r.run_id}: {r.status}: {r.reason}" for s, r in done.items() if s not in ok],
            _median([r.dendrites_added for r in ok.values()]), fresh, objective))
    return measured


def _interval(ci: tuple[float, float] | None, scale: float = 1.0) -> list[float] | None:
    return None if ci is None else [ci[0] * scale, ci[1] * scale]


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def config_result(m: Measured) -> ConfigResult:
    c = m.candidate
    return ConfigResult(c.label, c.family, c.trial, c.run_id, c.why, c.config, c.sweep_seed, m.runs, m.test.n, m.seeds,
                        m.fresh, _number(m.test.mean), _number(m.test.sd), _interval(m.test.ci), m.test_values,
                        m.objective_values, m.params, m.macs, m.dendrites, c.recorded, _number(m.objective.mean),
                        _number(c.recorded - m.objective.mean), m.failed)


def choose(measured: Sequence[Measured], maximize: bool) -> Measured | None:
    """The replicated config with the best mean of the sweep's (validation) metric, among those with two
    finished replicates."""
    usable = [m for m in measured if m.test.n >= 2 and math.isfinite(m.objective.mean)]
    if not usable:
        return None
    return (max if maximize else min)(usable, key=lambda m: m.objective.mean)


@dataclass(frozen=True)
class Rules:
    """What a verdict is held to: the declared effect, the level of this look, whether it is exploratory."""

    min_effect: float = MIN_EFFECT  # an error reduction
    alpha: float = stats.ALPHA  # this look's level (O'Brien-Fleming spending under a declared schedule)
    exploratory: str | None = None  # why p-values are not a valid test here (an undeclared later look)
    resample_split: bool = False  # every seed drew its own split: the seeds' spread carries the examples' noise


def compare(d: Measured, b: Measured, rules: Rules = Rules()) -> Comparison:
    """Dendritic vs baseline on test accuracy: the difference (pp) with both sources of noise, the error
    reduction from the same interval, P(dendritic > baseline), power for the declared effect."""
    diff = stats.compare(d.outcomes, b.outcomes)
    reduction, reduction_ci = stats.error_reduction(diff, b.test.mean)
    superior, superior_ci = stats.probability_of_superiority(d.test_values, b.test_values)
    err_b = 1 - b.test.mean
    seed_var = (d.test.sd ** 2 if d.test.n > 1 else 0.0) + (b.test.sd ** 2 if b.test.n > 1 else 0.0)
    n = min(d.test.n, b.test.n)
    delta = rules.min_effect * err_b
    return Comparison(
        accuracy_diff_pp=diff.diff * 100, accuracy_diff_ci=_interval(diff.ci, 100), p_value=diff.p_value,
        significant=diff.significant(rules.alpha) and rules.exploratory is None,
        population=stats.TASK if rules.resample_split else diff.population, test_examples=diff.examples,
        error_reduction=reduction, error_reduction_ci=list(reduction_ci) if reduction_ci else None,
        prob_dendritic_better=superior, prob_dendritic_better_ci=list(superior_ci), min_effect=rules.min_effect,
        power=stats.power(delta, seed_var, diff.example_var, n),
        detectable_error_reduction=stats.detectable(seed_var, diff.example_var, n) / err_b if err_b > 0 else None,
        seeds_to_resolve=stats.seeds_needed(delta, seed_var, diff.example_var), baseline=b.candidate.label,
        spread=diff.spread, lower_bound_pp=diff.lower_bound() * 100, one_sided_p=_one_sided(diff))


def _one_sided(diff: stats.Difference, margin: float = 0.0) -> float:
    """p of `a - b <= -margin` (non-inferiority by `margin`)."""
    if diff.se == 0:
        return 0.0 if diff.diff > -margin else 1.0
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.sf((diff.diff + margin) / diff.se, diff.df))


def _pp(value: float) -> str:
    return f"{0.0 if abs(value) < 0.005 else value:+.2f}"  # never "-0.00"


WHERE = {stats.TASK: "on this task (new seeds and new test examples)",
         stats.SPLIT: "on this data set's test split (new seeds; the split's own noise not counted)"}


def headline(d: Measured, b: Measured, c: Comparison) -> str:
    n = f"{d.test.n} seeds each" if d.test.n == b.test.n else f"{d.test.n} and {b.test.n} seeds"
    lo, hi = c.accuracy_diff_ci or (math.nan, math.nan)
    sizes = f"{d.params} vs {b.params} parameters" if d.params and b.params else "sizes not reported"
    if d.dendrites == 0:  # PAI keeps a dendrite only when it improves validation: most replicates kept none
        sizes += (" (the dendritic config's replicates kept a median of 0 dendrites: PAI removes a dendrite that "
                  "does not improve validation)")
    scores = (f"the best dendritic config scores {d.test.mean:.2%} test accuracy vs {b.test.mean:.2%} for the "
              f"best baseline")
    interval = f"{_pp(c.accuracy_diff_pp)} pp, 95% CI [{_pp(lo)}, {_pp(hi)}] {WHERE[c.population]}"
    if c.significant:
        reduction = ""
        if c.error_reduction is not None and c.error_reduction_ci is not None:
            rlo, rhi = c.error_reduction_ci
            reduction = f"; error reduction {c.error_reduction:.0%}, 95% CI [{rlo:.0%}, {rhi:.0%}]"
        word = "help" if c.accuracy_diff_pp > 0 else "hurt"
        return f"Dendrites {word}: {scores} ({interval}{reduction}; p = {c.p_value:.2g}; {n}), with {sizes}."
    why = "" if c.spread else " (no seed varied, so no spread to test against)"
    return (f"No evidence of a difference at {n}: {scores} ({interval}, p = {c.p_value:.2g}{why}), with "
            f"{sizes}; {power_sentence(c)}.")


def power_sentence(c: Estimate) -> str:
    """What the seeds used could find, and what the declared effect would need, under the measured spread."""
    effect = f"a {c.min_effect:.0%} error reduction"
    detectable = c.detectable_error_reduction
    found = ("" if detectable is None else
             f"at these seeds a difference is found (80% power) from an error reduction of about {detectable:.0%}"
             if detectable < 1 else "at these seeds not even removing every error would be found reliably")
    needed = c.seeds_to_resolve
    plan = (f"{effect} (the declared effect) needs about {needed} seeds per config" if needed else
            f"no number of seeds finds {effect} on this test split: its own noise is too large")
    return "; ".join(part for part in (found, plan) if part)


def _equal_params(d: Measured, equal: Measured | None, headline_baseline: Measured,
                  rules: Rules) -> EqualSize | None:
    """The dendritic pick against the best baseline with at least as many parameters (`equal`); its statement
    when it is not the headline's comparison comes with the Holm adjustment (`_secondary`)."""
    if d.params is None:
        return None
    if equal is None:
        return EqualSize(f"The baseline sweep has no replicated config with at least {d.params} parameters.")
    c = compare(d, equal, rules)
    if equal.candidate == headline_baseline.candidate:
        return EqualSize(f"At equal size: the best baseline already has at least as many parameters "
                         f"({equal.params}), so the comparison above is the equal-size one.",
                         c, config_result(equal), same_as_headline=True)
    return EqualSize("", c, config_result(equal), same_as_headline=False)


def _compression(dendritic: Sequence[Measured], b: Measured, within_pp: float, rules: Rules) -> Compression:
    """Fixed-sequence non-inferiority: the dendritic configs with fewer parameters than the best baseline, from
    the largest down, each tested for `not worse than it by more than within_pp` (one-sided) at the level,
    stopping at the first that fails; the claim is the smallest that passed."""
    ladder = sorted((d for d in dendritic if d.test.n >= 2 and d.params is not None and b.params is not None
                     and d.params < b.params), key=lambda d: -(d.params or 0))
    passed: list[tuple[Measured, float, float]] = []
    for d in ladder:
        diff = stats.compare(d.outcomes, b.outcomes)
        p = _one_sided(diff, within_pp / 100)
        if p >= rules.alpha or not diff.spread:
            break
        passed.append((d, diff.lower_bound() * 100, p))
    tested = [m.candidate.label for m in ladder[:len(passed) + 1]]
    if not passed:
        return Compression(within_pp, None, tested, None,
                           f"No dendritic config with fewer parameters than the best baseline was shown to be "
                           f"within {within_pp:g} pp of it (one-sided 95% bound, tested from the largest down).")
    d, bound, _ = passed[-1]
    assert d.params is not None and b.params is not None
    params_cut = 1 - d.params / b.params
    macs_cut = 1 - d.macs / b.macs if d.macs and b.macs else None
    statement = (f"Compression: {d.candidate.label} has {params_cut:.0%} fewer parameters"
                 + (f" and {macs_cut:.0%} fewer MACs" if macs_cut is not None else "")
                 + f" than the best baseline, and is not worse by more than {within_pp:g} pp (one-sided 95% "
                   f"bound {_pp(bound)} pp; tested from the largest smaller config down).")
    return Compression(within_pp, config_result(d), tested,
                       max(p for _, _, p in passed),  # the sequence's: every step up to this one had to pass
                       statement, Reduction(params_cut, macs_cut, (d.test.mean - b.test.mean) * 100, bound))


def _secondary(equal: EqualSize | None, compression: Compression) -> tuple[EqualSize | None, Compression]:
    """Equal size and compression are secondary claims: Holm-adjusted together, so the two cannot both ride
    on one lucky draw. Returns both with their verdicts and statements."""
    c = equal.comparison if equal is not None and not equal.same_as_headline else None
    equal_p = c.p_value if c is not None else None
    held = stats.holm([equal_p, compression.p_value])
    if c is not None and equal is not None and equal.baseline_config is not None:
        c = replace(c, significant=bool(held[0]) and c.spread)
        lo, hi = c.accuracy_diff_ci or (math.nan, math.nan)
        b = equal.baseline_config
        verb = ("beats" if c.accuracy_diff_pp > 0 else "trails") if c.significant else "is indistinguishable from"
        equal = replace(equal, comparison=c, statement=(
            f"At equal size: the dendritic config {verb} the best baseline with at least as many parameters "
            f"({b.label}, {b.params} parameters, {b.test_acc_mean:.2%}): {_pp(c.accuracy_diff_pp)} pp, 95% CI "
            f"[{_pp(lo)}, {_pp(hi)}], p = {c.p_value:.2g} (Holm-adjusted with compression: "
            f"{'holds' if c.significant else 'no claim'})."))
    if compression.p_value is not None:
        compression = replace(compression, holds=bool(held[1]), statement=compression.statement + (
            "" if held[1] else " It does not hold once adjusted for the equal-size claim (Holm)."))
    return equal, compression


class NoVerdict(Exception):
    """Too few replicates finished to compare anything; the message says which."""


EQUAL = "equal_size"  # the pick for the equal-size question: the best baseline at least as large as the dendritic


def picks(measured: Sequence[Measured], maximize: bool) -> dict[str, tuple[Measured, int]]:
    """Per question, the config chosen on the choice's seeds and how many it was chosen among: each family's
    best headline candidate (the same K on both sides), and the best baseline at least as large as the
    dendritic pick. A family with nothing usable is a NoVerdict naming why."""
    found: dict[str, tuple[Measured, int]] = {}
    for name in (DENDRITIC, BASELINE):
        options = [m for m in measured if m.candidate.family == name and m.candidate.headline]
        chosen = choose(options, maximize)
        if chosen is None:
            failures = [f for m in options for f in m.failed]
            raise NoVerdict(f"no {name} config has 2 finished replicates with a test accuracy"
                            + (f" (failed: {'; '.join(failures[:3])})" if failures else ""))
        found[name] = (chosen, len([m for m in options if m.test.n >= 2]))
    d = found[DENDRITIC][0]
    larger = [m for m in measured if m.candidate.family == BASELINE and m.params is not None and d.params is not None
              and m.params >= d.params]
    equal = choose(larger, maximize)
    if equal is not None:
        found[EQUAL] = (equal, len([m for m in larger if m.test.n >= 2]))
    return found


def decide(estimates: Mapping[str, Measured], measured: Sequence[Measured], n_seeds: int, within_pp: float,
           rules: Rules = Rules()) -> Verdict:
    """The verdict from `estimates` (per question, the pick as measured for the comparison: on fresh seeds when it
    was chosen among several) and `measured` (every config on the choice's seeds)."""
    d, b = estimates[DENDRITIC], estimates[BASELINE]
    c = compare(d, b, rules)
    equal, compression = _secondary(_equal_params(d, estimates.get(EQUAL), b, rules),
                                    _compression([m for m in measured if m.candidate.family == DENDRITIC], b,
                                                 within_pp, rules))
    later = {id(m): m for m in estimates.values() if not any(m is x for x in measured)}  # the second round's
    return Verdict(
        statement=headline(d, b, c), estimate=c.estimate(), seeds=n_seeds,
        seed_values=sorted({s for m in [*measured, *later.values()] for s in m.seeds}),
        alpha=rules.alpha, exploratory=rules.exploratory,
        method=("per family, the top configs re-trained with the same seeds and the one with the best mean of "
                "the sweep's validation metric chosen; a pick made among several re-trained with fresh seeds; "
                "compared on the held-out test split, the interval counting the seeds' spread (Welch) and, "
                "when the trials saved their predictions, the test examples' (paired); the error reduction "
                "from the same interval; equal size and compression secondary (Holm), compression tested in a "
                "fixed sequence"),
        dendritic=config_result(d), baseline=config_result(b), equal_params=equal, compression=compression,
        fronts=fronts(measured), configs=[config_result(m) for m in [*measured, *later.values()]])


def fronts(measured: Sequence[Measured]) -> dict[str, list[FrontPoint]]:
    """Per family, its replicated Pareto front members by cost (`--front`): the compression answer as a curve,
    each point's test accuracy with its seeds' interval."""
    curves: dict[str, list[FrontPoint]] = {}
    for m in sorted((m for m in measured if m.candidate.front_cost is not None),
                    key=lambda m: m.candidate.front_cost[1] if m.candidate.front_cost else 0.0):
        axis, cost = m.candidate.front_cost or ("", 0.0)
        curves.setdefault(m.candidate.family, []).append(
            FrontPoint(m.candidate.label, axis, cost, m.test.n, _number(m.test.mean), _interval(m.test.ci)))
    return curves


Replicator = Callable[[Sequence[Candidate], Sequence[int]], Mapping[str, TrialRecord]]


def evaluate(candidates: Sequence[Candidate], replicate: Replicator, choice_seeds: int, seeds_each: int,
             maximize: bool) -> tuple[dict[str, Measured], list[Measured], dict[str, TrialRecord]]:
    """The two rounds: every candidate replicated on `choice_seeds` seeds and the picks chosen on them; then
    each pick measured on `seeds_each` seeds, fresh ones (2000, ...) when it was chosen among several (its
    choice flatters it), else its own choice seeds extended. Returns the estimates per question, every
    candidate as measured for the choice, and every record by replicate key. A declared schedule keeps the
    choice at its first look and grows only the estimates, as analysis/simulate.py does."""
    records = dict(replicate(candidates, seeds(choice_seeds)))
    measured = measure(candidates, seeds(choice_seeds), records)
    chosen = picks(measured, maximize)
    unique = {m.candidate.label: m.candidate for m, _ in chosen.values()}
    fresh = list(dict.fromkeys(m.candidate.label for m, among in chosen.values() if among > 1))
    extended = [c for label, c in unique.items() if label not in fresh and seeds_each > choice_seeds]
    again: dict[str, Measured] = {}
    for group, values, is_fresh in ((extended, seeds(seeds_each), False),
                                    ([unique[label] for label in fresh], seeds(seeds_each, FRESH_SEED), True)):
        if group:
            records.update(replicate(group, values))
            again.update({m.candidate.label: m for m in measure(group, values, records, fresh=is_fresh)})
    estimates = {question: again.get(m.candidate.label, m) for question, (m, _) in chosen.items()}
    for question, m in estimates.items():
        if m.test.n < 2:
            raise NoVerdict(f"the {question} pick has fewer than 2 finished replicates ({'; '.join(m.failed[:3])})")
    return estimates, measured, records


def scope(records: Iterable[TrialRecord]) -> Scope:
    """What an answer is about: which dendrites (this perforatedai runs gradient-descent dendrites, not the
    Perforated Backpropagation of PerforatedAI's paid add-on), on which data, decided by how many samples."""
    done = [r for r in records if r.status == Status.FINISHED]
    pai = next((r.versions["perforatedai"] for r in done if "perforatedai" in r.versions), None)
    data = next((r.data for r in done if r.data.digest), DataInfo())
    digests = sorted({r.data.digest for r in done if r.data.digest})
    return Scope(f"gradient-descent dendrites (open perforatedai {pai}), not Perforated Backpropagation"
                 if pai else "dendrites as the sweeps' program implements them",
                 pai, data.source, digests, {"train": data.train, "validation": data.val, "test": data.test})


def qualify(verdict: Verdict, scope: Scope, differences: Sequence[str]) -> Verdict:
    """The verdict with what its answer rests on: the scope, and a warning when the two sides did not get
    the same search (settings, ranges, budget) or the same data; both end the statement too."""
    splits = {k: v for k, v in scope.splits.items() if v is not None}
    sizes = f"; splits: {', '.join(f'{k} {v}' for k, v in splits.items())} samples" if splits else ""
    statement = f"{verdict.statement} Scope: {scope.dendrites}; data: {scope.data or 'unreported'}{sizes}."
    unequal = [*differences, *(["the two sides trained on different data"] if len(scope.data_digests) > 1 else [])]
    warning = (f"Warning: the two sweeps did not get the same search, so this is not an equal-effort comparison: "
               f"{'; '.join(unequal)}.") if unequal else None
    return replace(verdict, statement=statement + (f" {warning}" if warning else ""), scope=scope,
                   search_differences=unequal, warning=warning)


@dataclass(frozen=True)
class Request:
    """What the user asked for (`python -m analysis verdict` flags)."""

    top: int = 3
    seeds: int = 5
    within_pp: float = 0.5
    workers: int = 1
    gpus: tuple[str, ...] = ()
    heartbeat: int = 20
    timeout: float | None = None
    progress: bool = True
    include_capped: bool = False  # let trials the epoch cap stopped be candidates
    min_effect: float = MIN_EFFECT  # the smallest error reduction worth finding (power is planned for it)
    schedule: tuple[int, ...] = ()  # declared looks (seeds), e.g. (5, 10, 20): O'Brien-Fleming levels per look
    resample_split: bool = False  # each replicate draws its own data split (data_seed = its seed)
    front: int = 0  # members of each family's Pareto front to replicate too (the compression curve)


def rules(request: Request, previous: Verdict | None) -> tuple[Rules, list[int], Schedule | None]:
    """The level this look is tested at, the looks so far and the declared schedule: a declared schedule (now,
    or at the first look) gives each look its O'Brien-Fleming level; a later look at more seeds without one
    is exploratory, because stopping at the first significant look would inflate the false-positive rate."""
    earlier = previous.looks if previous is not None else []
    declared = list(request.schedule) or (previous.schedule.looks if previous and previous.schedule else [])
    looks = [*earlier, request.seeds] if not earlier or earlier[-1] != request.seeds else list(earlier)
    levels = stats.spending(declared) if declared else []
    level, exploratory = stats.ALPHA, None
    if declared and request.seeds in declared:
        level = levels[declared.index(request.seeds)]
    elif declared:
        exploratory = f"{request.seeds} seeds is not a look of the declared schedule {declared}"
    elif len(looks) > 1:
        exploratory = (f"a later look ({' -> '.join(map(str, looks))} seeds) without a declared schedule: its p-value "
                       "is not a valid test (declare the looks up front, e.g. --schedule 5,10,20)")
    return (Rules(request.min_effect, level, exploratory, request.resample_split), looks,
            Schedule(declared, levels) if declared else None)


def run(dendritic: Family, baseline: Family, storage_url: str, runs_dir: Path, out_dir: Path,
        request: Request, *, launcher: Launcher | None = None) -> Verdict:
    """Plan, replicate for the choice, choose, replicate the picks afresh, decide, write verdict.json (resuming
    whatever already ran: a replicate settled in the study is never run again). The replicates run through
    `launcher` (default: processes on this machine, over the request's workers and GPUs)."""
    from dendrisweep import make_dir
    from dendrisweep.sweep import AgentOptions, redact
    from dendrisweep.verdict import ReplicatesFailing, run_replicates

    study = f"{dendritic.study}-verdict"
    opts = AgentOptions(spec=dendritic.spec, study_name=study, storage_url=storage_url,
                        run_dir=make_dir(runs_dir / study, "the replicates' run folder"), workers=request.workers,
                        gpus=request.gpus, timeout=request.timeout, heartbeat=request.heartbeat,
                        progress=request.progress, launcher=launcher)
    specs = {DENDRITIC: dendritic.spec, BASELINE: baseline.spec}

    def replicate(candidates: Sequence[Candidate], seed_values: Sequence[int]) -> dict[str, TrialRecord]:
        try:
            return run_replicates(opts, specs, replicates(candidates, seed_values, study, request.resample_split))
        except ReplicatesFailing as exc:
            raise NoVerdict(str(exc)) from None

    candidates = plan(dendritic, baseline, request.top, request.within_pp, request.include_capped, request.front)
    held, looks, schedule = rules(request, read(out_dir / VERDICT_FILE, dendritic.study))
    choice = schedule.looks[0] if schedule is not None else request.seeds
    estimates, measured, records = evaluate(candidates, replicate, choice, request.seeds, dendritic.spec.maximize)
    verdict = qualify(decide(estimates, measured, request.seeds, request.within_pp, held), scope(records.values()),
                      differences(dendritic.spec, baseline.spec))
    if held.exploratory:
        verdict = replace(verdict, statement=f"Exploratory ({held.exploratory}). {verdict.statement}")
    verdict = replace(verdict, looks=looks, schedule=schedule,
                      studies=Studies(dendritic.study, baseline.study, study, redact(storage_url), str(opts.run_dir)))
    return write(verdict, out_dir)


def write(verdict: Verdict, out_dir: Path) -> Verdict:
    """verdict.json in `out_dir`, stamped with the time it was written; returns the verdict as written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamped = replace(verdict, created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    (out_dir / VERDICT_FILE).write_text(json.dumps(stamped.to_json(), indent=2, default=str))
    return stamped


def read(path: Path, study: str) -> Verdict | None:
    """The verdict.json at `path` when it is about the sweep `study`, else None (none, or another's)."""
    found = read_verdict(path) if path.is_file() else None
    return found if found is not None and found.studies is not None and found.studies.dendritic == study else None
