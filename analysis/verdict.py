"""The verdict: is the dendritic model better than the baseline, by how much, how sure, at what cost.

One sweep trial per side is mostly noise, and the best of many noisy trials is flattered by its
selection (the winner's curse). So:
1. plan: the top-K configs of each sweep by the sweep's metric, plus the configs the questions need:
   for each dendritic one, the best baseline with at least as many parameters (is it the dendrites or
   just size?), and the smallest dendritic config near the best baseline on validation (compression);
2. replicate: every config re-trained with the same N fresh seeds (weight init and batch order; the
   data split stays fixed), run by the library (dendrisweep.verdict) through the agent's own loop;
3. decide: per family the config with the best replicate mean of the sweep's (validation) metric,
   then the two compared on the held-out test split, which chose nothing (analysis/stats.py);
4. verdict.json, whose `statement` never claims a winner its interval does not support.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import stats
from analysis.load import META
from analysis.rank import finished, row_config, smallest_within
from dendrisweep import EPOCH_CAP, FINISHED, DataInfo, TrialRecord, is_number
from dendrisweep.sweep import SweepSpec, differences, nest
from dendrisweep.verdict import Replicate

DENDRITIC, BASELINE = "dendritic", "baseline"
FIRST_SEED = 1000  # replicate seeds: 1000, 1001, ... (sweep trials use the `seed` setting, 0 by default)
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

    @property
    def label(self) -> str:
        return f"{self.family} trial {self.trial if self.trial is not None else self.run_id}"


def seeds(n: int) -> list[int]:
    return list(range(FIRST_SEED, FIRST_SEED + n))


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
         include_capped: bool = False) -> list[Candidate]:
    """The configs to replicate, each once (see the module's docstring for which and why)."""
    maximize = dendritic.spec.maximize
    chosen: dict[str, Candidate] = {}

    def add(family: Family, row: pd.Series, why: str) -> Candidate:
        config = trial_config(row, family.spec)
        key = family.name + _key(config)
        if key not in chosen:
            params = None if _missing(row["params"]) else int(row["params"])
            seed = row.get("seed")
            chosen[key] = Candidate(family.name, None if _missing(row["trial"]) else int(row["trial"]),
                                    str(row["run_id"]), why, float(row["objective"]), params, config,
                                    None if _missing(seed) else (seed.item() if hasattr(seed, "item") else seed))
        return chosen[key]

    def ranked(family: Family) -> pd.DataFrame:
        return eligible(family.df, include_capped).sort_values("objective", ascending=not maximize, kind="stable")

    tops: dict[str, list[Candidate]] = {}
    for family in (dendritic, baseline):
        picked: list[Candidate] = []
        for _, row in ranked(family).iterrows():
            if len(picked) == top:
                break
            candidate = add(family, row, f"top {len(picked) + 1} of its sweep")
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
    if not base.empty and not base["best_val_acc"].isna().all():  # compression: small, yet close to it
        best_baseline = float(base.iloc[0]["best_val_acc"])
        small = smallest_within(eligible(dendritic.df, include_capped), best_baseline, within_pp)
        if small is not None:
            add(dendritic, small, f"smallest within {within_pp:g} pp of the best baseline in the sweep")
    return list(chosen.values())


def replicate_key(candidate: Candidate, seed: int) -> str:
    return f"{candidate.family}-{candidate.run_id}-seed{seed}"


def replicates(candidates: Sequence[Candidate], seed_values: Sequence[int], study: str) -> list[Replicate]:
    """Every candidate with every seed; one W&B group per config."""
    return [Replicate(replicate_key(c, s), c.family, f"{study}:{c.family}-{c.run_id}", {**c.config, "seed": s})
            for c in candidates for s in seed_values]


@dataclass
class Measured:
    """A candidate's replicates as they came back."""

    candidate: Candidate
    test: stats.Sample
    objective: stats.Sample  # the sweep's metric over the replicates
    test_values: list[float]
    params: int | None
    macs: int | None
    runs: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "run id: status: reason"
    dendrites: int | None = None  # dendrites the replicates' best models kept (median)


def _median(values: list[Any]) -> int | None:
    numbers = sorted(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))
    return int(numbers[len(numbers) // 2]) if numbers else None


def measure(candidates: Sequence[Candidate], seed_values: Sequence[int],
            records: Mapping[str, TrialRecord]) -> list[Measured]:
    """Each candidate's settled replicates (`records`, by replicate key): finished ones measured, the
    others listed with their reason."""
    measured = []
    for c in candidates:
        done = [records[key] for key in (replicate_key(c, s) for s in seed_values) if key in records]
        ok = [r for r in done if r.status == FINISHED and is_number(r.test_acc)]
        test = [float(r.test_acc) for r in ok if r.test_acc is not None]
        objective = [float(r.objective) for r in ok if r.objective is not None]
        measured.append(Measured(
            c, stats.describe(test), stats.describe(objective), test,
            _median([r.params for r in ok]) if ok else c.params, _median([r.macs for r in ok]),
            [str(r.run_id) for r in ok], [f"{r.run_id}: {r.status}: {r.reason}" for r in done if r not in ok],
            _median([r.dendrites_added for r in ok])))
    return measured


def _interval(ci: tuple[float, float] | None, scale: float = 1.0) -> list[float] | None:
    return None if ci is None else [ci[0] * scale, ci[1] * scale]


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def config_json(m: Measured) -> dict[str, Any]:
    c = m.candidate
    return {"label": c.label, "family": c.family, "trial": c.trial, "run_id": c.run_id, "chosen_because": c.why,
            "config": c.config, "sweep_seed": c.sweep_seed, "runs": m.runs, "n": m.test.n,
            "test_acc_mean": _number(m.test.mean),
            "test_acc_sd": _number(m.test.sd), "test_acc_ci": _interval(m.test.ci), "test_acc_values": m.test_values,
            "params": m.params, "macs": m.macs, "dendrites_added": m.dendrites, "sweep_value": c.recorded,
            "replicate_value_mean": _number(m.objective.mean),
            "selection_gap": _number(c.recorded - m.objective.mean), "failed_runs": m.failed}


def compare(d: Measured, b: Measured) -> dict[str, Any]:
    """Dendritic vs baseline on test accuracy: difference (pp), error reduction, p-value, seeds needed."""
    diff = stats.welch(d.test_values, b.test_values)
    reduction, reduction_ci = stats.error_reduction(d.test_values, b.test_values)
    return {"baseline": b.candidate.label, "accuracy_diff_pp": diff.diff * 100,
            "accuracy_diff_ci": _interval(diff.ci, 100), "p_value": diff.p_value,
            "significant": diff.p_value < stats.ALPHA, "error_reduction": reduction,
            "error_reduction_ci": list(reduction_ci) if reduction_ci else None,
            "seeds_to_resolve": None if diff.p_value < stats.ALPHA else
            stats.seeds_to_resolve(diff.diff, d.test.sd, b.test.sd)}


def _best(measured: Sequence[Measured], maximize: bool) -> Measured | None:
    usable = [m for m in measured if m.test.n >= 2 and math.isfinite(m.objective.mean)]
    if not usable:
        return None
    return (max if maximize else min)(usable, key=lambda m: m.objective.mean)


def _pp(value: float) -> str:
    return f"{0.0 if abs(value) < 0.005 else value:+.2f}"  # never "-0.00"


def headline(d: Measured, b: Measured, c: Mapping[str, Any]) -> str:
    n = f"{d.test.n} seeds each" if d.test.n == b.test.n else f"{d.test.n} and {b.test.n} seeds"
    lo, hi = c["accuracy_diff_ci"]
    sizes = f"{d.params} vs {b.params} parameters" if d.params and b.params else "sizes not reported"
    if d.dendrites == 0:  # PAI keeps a dendrite only when it improves validation: most replicates kept none
        sizes += (" (the dendritic config's replicates kept a median of 0 dendrites: PAI removes a dendrite that "
                  "does not improve validation)")
    scores = (f"the best dendritic config scores {d.test.mean:.2%} test accuracy vs {b.test.mean:.2%} for the "
              f"best baseline")
    if c["significant"]:
        reduction = ""
        if c["error_reduction"] is not None:
            rlo, rhi = c["error_reduction_ci"]
            reduction = f"; error reduction {c['error_reduction']:.0%}, 95% CI [{rlo:.0%}, {rhi:.0%}]"
        word = "help" if c["accuracy_diff_pp"] > 0 else "hurt"
        return (f"Dendrites {word}: {scores} ({_pp(c['accuracy_diff_pp'])} pp, 95% CI [{_pp(lo)}, {_pp(hi)}]"
                f"{reduction}; Welch p = {c['p_value']:.2g}; {n}), with {sizes}.")
    needed = c["seeds_to_resolve"]
    if needed:
        resolve = f"about {needed} seeds per config would resolve a difference of this size (80% power)"
    elif abs(c["accuracy_diff_pp"]) < 1e-9:
        resolve = "the observed difference is zero, so no number of seeds would resolve it"
    else:
        resolve = f"a difference this small would need more than {stats.MAX_SEEDS:,} seeds per config"
    return (f"No evidence of a difference at {n}: {scores} ({_pp(c['accuracy_diff_pp'])} pp, 95% CI "
            f"[{_pp(lo)}, {_pp(hi)}], Welch p = {c['p_value']:.2g}), with {sizes}; {resolve}.")


def _equal_params(d: Measured, baselines: Sequence[Measured], headline_baseline: Measured,
                  maximize: bool) -> dict[str, Any] | None:
    if d.params is None:
        return None
    larger = [m for m in baselines if m.params is not None and m.params >= d.params]
    b = _best(larger, maximize)
    if b is None:
        return {"statement": f"The baseline sweep has no replicated config with at least {d.params} parameters."}
    c = compare(d, b)
    if b is headline_baseline:
        return {**c, "baseline_config": config_json(b),
                "statement": f"At equal size: the best baseline already has at least as many parameters ({b.params}), "
                             "so the comparison above is the equal-size one."}
    lo, hi = c["accuracy_diff_ci"]
    verb = ("beats" if c["accuracy_diff_pp"] > 0 else "trails") if c["significant"] else "is indistinguishable from"
    c["statement"] = (f"At equal size: the dendritic config {verb} the best baseline with at least as many parameters "
                      f"({b.candidate.label}, {b.params} parameters, {b.test.mean:.2%}): {_pp(c['accuracy_diff_pp'])} "
                      f"pp, 95% CI [{_pp(lo)}, {_pp(hi)}], Welch p = {c['p_value']:.2g}.")
    return {**c, "baseline_config": config_json(b)}


def _compression(dendritic: Sequence[Measured], b: Measured, within_pp: float) -> dict[str, Any]:
    """The smallest dendritic config not worse than the best baseline by more than `within_pp` (one-sided
    95 % Welch bound), with fewer parameters than it."""
    fits = []
    for d in dendritic:
        if d.test.n < 2 or d.params is None or b.params is None or d.params >= b.params:
            continue
        bound = stats.welch(d.test_values, b.test_values).lower_bound() * 100
        if bound >= -within_pp:
            fits.append((d, bound))
    if not fits:
        return {"within_pp": within_pp, "config": None,
                "statement": f"No dendritic config with fewer parameters than the best baseline was shown to be "
                             f"within {within_pp:g} pp of it (one-sided 95% bound)."}
    d, bound = min(fits, key=lambda fit: fit[0].params or 0)
    assert d.params is not None and b.params is not None
    params_cut = 1 - d.params / b.params
    macs_cut = 1 - d.macs / b.macs if d.macs and b.macs else None
    return {"within_pp": within_pp, "config": config_json(d), "params_reduction": params_cut,
            "macs_reduction": macs_cut, "accuracy_diff_pp": (d.test.mean - b.test.mean) * 100,
            "accuracy_diff_lower_bound_pp": bound,
            "statement": f"Compression: {d.candidate.label} has {params_cut:.0%} fewer parameters"
                         + (f" and {macs_cut:.0%} fewer MACs" if macs_cut is not None else "")
                         + f" than the best baseline, and is not worse by more than {within_pp:g} pp (one-sided 95% "
                           f"bound {_pp(bound)} pp)."}


class NoVerdict(Exception):
    """Too few replicates finished to compare anything; the message says which."""


def decide(measured: Sequence[Measured], maximize: bool, n_seeds: int, within_pp: float) -> dict[str, Any]:
    """verdict.json's content from the replicates."""
    families = {name: [m for m in measured if m.candidate.family == name] for name in (DENDRITIC, BASELINE)}
    best = {name: _best(group, maximize) for name, group in families.items()}
    for name, chosen in best.items():
        if chosen is None:
            failures = [f for m in families[name] for f in m.failed]
            raise NoVerdict(f"no {name} config has 2 finished replicates with a test accuracy"
                            + (f" (failed: {'; '.join(failures[:3])})" if failures else ""))
    d, b = best[DENDRITIC], best[BASELINE]
    assert d is not None and b is not None
    c = compare(d, b)
    return {
        "statement": headline(d, b, c),
        **{k: c[k] for k in ("error_reduction", "error_reduction_ci", "accuracy_diff_pp", "accuracy_diff_ci",
                             "p_value", "significant", "seeds_to_resolve")},
        "seeds": n_seeds, "seed_values": seeds(n_seeds), "alpha": stats.ALPHA,
        "method": ("per family, the config with the best replicate mean of the sweep's validation metric; compared "
                   "on the held-out test split: Welch's t for the accuracy difference (95% interval, two-sided p), a "
                   f"percentile bootstrap ({stats.BOOTSTRAP_SAMPLES} resamples of seeds) for the error reduction"),
        DENDRITIC: config_json(d), BASELINE: config_json(b),
        "equal_params": _equal_params(d, families[BASELINE], b, maximize),
        "compression": _compression(families[DENDRITIC], b, within_pp),
        "configs": [config_json(m) for m in measured],
    }


def scope(records: Iterable[TrialRecord]) -> dict[str, Any]:
    """What an answer is about: which dendrites (this perforatedai runs gradient-descent dendrites, not the
    Perforated Backpropagation of PerforatedAI's paid add-on), on which data, decided by how many samples."""
    done = [r for r in records if r.status == FINISHED]
    pai = next((r.versions["perforatedai"] for r in done if "perforatedai" in r.versions), None)
    data = next((r.data for r in done if r.data.digest), DataInfo())
    digests = sorted({r.data.digest for r in done if r.data.digest})
    return {"dendrites": (f"gradient-descent dendrites (open perforatedai {pai}), not Perforated Backpropagation"
                          if pai else "dendrites as the sweeps' program implements them"),
            "perforatedai": pai, "data": data.source, "data_digests": digests,
            "splits": {"train": data.train, "validation": data.val, "test": data.test}}


def qualify(verdict: dict[str, Any], scope: Mapping[str, Any], differences: Sequence[str]) -> dict[str, Any]:
    """verdict.json with what its answer rests on: the scope, and a warning when the two sides did not
    get the same search (settings, ranges, budget) or the same data; both end the statement too."""
    splits = {k: v for k, v in scope["splits"].items() if v is not None}
    sizes = f"; splits: {', '.join(f'{k} {v}' for k, v in splits.items())} samples" if splits else ""
    statement = f"{verdict['statement']} Scope: {scope['dendrites']}; data: {scope['data'] or 'unreported'}{sizes}."
    unequal = [*differences, *(["the two sides trained on different data"] if len(scope["data_digests"]) > 1 else [])]
    warning = (f"Warning: the two sweeps did not get the same search, so this is not an equal-effort comparison: "
               f"{'; '.join(unequal)}.") if unequal else None
    return {**verdict, "statement": statement + (f" {warning}" if warning else ""), "scope": scope,
            "search_differences": unequal, "warning": warning}


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


def run(dendritic: Family, baseline: Family, storage_url: str, runs_dir: Path, out_dir: Path,
        request: Request) -> dict[str, Any]:
    """Plan, replicate (resuming whatever already ran), decide, and write verdict.json."""
    from dendrisweep import make_dir
    from dendrisweep.sweep import AgentOptions, redact
    from dendrisweep.verdict import ReplicatesFailing, run_replicates

    study = f"{dendritic.study}-verdict"
    candidates = plan(dendritic, baseline, request.top, request.within_pp, request.include_capped)
    seed_values = seeds(request.seeds)
    opts = AgentOptions(spec=dendritic.spec, study_name=study, storage_url=storage_url,
                        run_dir=make_dir(runs_dir / study, "the replicates' run folder"), workers=request.workers,
                        gpus=request.gpus, timeout=request.timeout, heartbeat=request.heartbeat,
                        progress=request.progress)
    try:
        records = run_replicates(opts, {DENDRITIC: dendritic.spec, BASELINE: baseline.spec},
                                 replicates(candidates, seed_values, study))
    except ReplicatesFailing as exc:
        raise NoVerdict(str(exc)) from None
    verdict = qualify(decide(measure(candidates, seed_values, records), dendritic.spec.maximize, request.seeds,
                             request.within_pp), scope(records.values()), differences(dendritic.spec, baseline.spec))
    verdict["studies"] = {DENDRITIC: dendritic.study, BASELINE: baseline.study, "replicates": study,
                          "storage": redact(storage_url), "replicate_runs": str(opts.run_dir)}
    write(verdict, out_dir)
    return verdict


def write(verdict: Mapping[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / VERDICT_FILE
    stamped = {**verdict, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path.write_text(json.dumps(stamped, indent=2, default=str))
    return path


def read(path: Path, study: str) -> dict[str, Any] | None:
    """The verdict.json at `path` when it is about the sweep `study`, else None (none, or another's)."""
    found = json.loads(path.read_text()) if path.is_file() else None
    return found if found is not None and found.get("studies", {}).get(DENDRITIC) == study else None
