"""A sweep report: report.html (plots embedded, readable offline), report.md, trials.csv."""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.pareto import (
    BASELINE,
    COST_LABELS,
    DENDRITIC,
    MARGIN,
    FrontComparison,
    compare_fronts,
    cost_axes,
    families,
)
from analysis.rank import best, direction, finished, importance, swept_settings
from dendrisweep import EPOCH_CAP, Status
from dendrisweep.verdict import Verdict

SHOWN = ["trial", "run_id", "state", "objective", "best_val_acc", "test_acc", "params", "macs", "dendrites_added"]


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    figures: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Constraints:
    max_params: int | None = None
    max_macs: int | None = None
    min_accuracy: float | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.max_params, self.max_macs, self.min_accuracy))

    def __str__(self) -> str:
        limits = [(self.max_params, "parameters <= {}"), (self.max_macs, "MACs <= {}"),
                  (self.min_accuracy, "val accuracy >= {}")]
        return ", ".join(text.format(value) for value, text in limits if value is not None)


def _describe(row: pd.Series, metric: str, settings: list[str]) -> str:
    chosen = ", ".join(f"{name}={row[name]}" for name in settings)
    measured = [text.format(row[key]) for key, text in (("test_acc", "test accuracy {:.4f}"),
                ("params", "{} parameters"), ("macs", "{} MACs"), ("dendrites_added", "{} dendrites"))
                if not pd.isna(row[key])]  # train_trial.py's; another program's sweep has its own metric only
    return (f"trial {row['trial']} (run {row['run_id']}): {metric} {row['objective']:.4f}"
            + "".join(f", {m}" for m in measured) + (f"; {chosen}" if chosen else ""))


def _table(df: pd.DataFrame, extra: list[str]) -> pd.DataFrame:
    shown = [c for c in SHOWN if c in df and (c in ("trial", "run_id", "state") or df[c].notna().any())]
    return df[shown + [c for c in extra if c in df]].reset_index(drop=True)


def _measured(df: pd.DataFrame, column: str) -> bool:
    """Whether the trials report this (train_trial.py does; another program may not)."""
    return column in df and bool(df[column].notna().any())


def build_sections(df: pd.DataFrame, metric: str, maximize: bool, baseline: pd.DataFrame | None = None,
                   constraints: Constraints = Constraints(), within_pp: float = 1.0) -> list[Section]:
    """Everything the report says, independent of its format."""
    settings = swept_settings(df)
    counts = df["state"].value_counts()
    summary = Section("Summary", [f"{len(df)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + "."])
    top = best(df, maximize)
    if top is None:
        summary.text.append("No finished trial yet.")
        return [summary]
    summary.text.append("Best: " + _describe(top, metric, settings))
    if constraints:
        constrained = best(df, maximize, constraints.max_params, constraints.max_macs, constraints.min_accuracy)
        described = _describe(constrained, metric, settings) if constrained is not None else "none qualifies"
        summary.text.append(f"Best with {constraints}: {described}")
    ranked = finished(df).sort_values("objective", ascending=not maximize).head(10)
    sections = [summary, Section(f"Top {len(ranked)} trials by {metric}", table=_table(ranked, settings))]

    if not _measured(df, "params"):  # not train_trial.py's sweep: no sizes, no dendrites to speak of
        return [*sections, _drivers(df, metric, maximize, settings), *_capped(df), *_failures(df)]
    sections.append(_compression(df, baseline, settings, within_pp))

    pictures = _drivers(df, metric, maximize, settings)
    pictures.figures["accuracy_vs_dendrites"] = plots.accuracy_vs(df, "dendrites_added")
    for column, log in (("learning_rate", True), ("switch_mode", False), ("width_multiplier", False)):
        if column in settings:
            pictures.figures[f"accuracy_vs_{column}"] = plots.accuracy_vs(df, column, log)
    return [*sections, pictures, *_capped(df), *_failures(df)]


def _compression(df: pd.DataFrame, baseline: pd.DataFrame | None, settings: list[str], within_pp: float) -> Section:
    """Both families' Pareto fronts on flash and RAM (else parameters and MACs): their hypervolumes against
    one reference point, and each family's smallest model within `within_pp` of the best baseline."""
    section = Section("Compression: the smallest model that keeps the accuracy")
    groups = families(df, baseline)
    rated = groups[BASELINE].dropna(subset=["best_val_acc"]) if BASELINE in groups else pd.DataFrame()
    if not rated.empty:
        base = rated.loc[rated["best_val_acc"].idxmax()]
        section.text.append(f"Best baseline (no dendrites): val accuracy {base['best_val_acc']:.4f} with "
                            f"{base['params']} parameters, {base['macs']} MACs.")
    else:
        section.text.append("Give a baseline sweep (--baseline sweeps/kws_baseline.yaml) to answer this.")
    compared = (compare_fronts(groups, cost, pp=within_pp) for cost in cost_axes(pd.concat(groups.values())))
    comparisons = [c for c in compared if c is not None]
    for comparison in comparisons:
        section.text += _front_lines(comparison)
        section.figures[f"pareto_{comparison.cost}"] = plots.pareto(comparison)
    if comparisons:
        first = comparisons[0]
        section.text.append(f"The fronts on {COST_LABELS.get(first.cost, first.cost)}, cheapest first:")
        fronts = pd.concat([front.assign(family=family) for family, front in first.fronts.items()])
        table = _table(fronts, ["family", *[c for c in (first.cost,) if c not in SHOWN], *settings])
        section.table = table[["family", *table.columns.drop("family")]]  # which front a row is on, first
    return section


def _front_lines(c: FrontComparison) -> list[str]:
    """What a cost axis says: each front's hypervolume with the reference point, then the smallest models."""
    label, ref = COST_LABELS.get(c.cost, c.cost), c.reference
    volumes = ", ".join(f"{family} front {volume:.4f}" for family, volume in c.hypervolumes.items())
    if len(c.hypervolumes) == 2:
        volumes += f" (dendritic / baseline: {c.hypervolumes[DENDRITIC] / c.hypervolumes[BASELINE]:.2f}x)"
    lines = [f"Accuracy vs {label}: hypervolume of the {volumes}; reference point {c.accuracy} {ref.accuracy:.4f}, "
             f"{label} {ref.cost:,.0f}, shared by the fronts (their lowest accuracy and largest cost, each pushed "
             f"out by {MARGIN:.0%} of the fronts' range). The area is in accuracy x decades of cost, larger is better."]
    small = c.smallest
    if small is not None:
        ratio = small.ratio
        compared = "" if ratio is None else f"; dendritic / baseline {ratio:.2f}x" + " (no compression)" * (ratio >= 1)
        lines.append(f"Smallest dendritic model within {small.pp:g} pp of the best baseline ({c.accuracy} >= "
                     f"{small.target:.4f}), on {label}: {_cheapest(small.dendritic, c)}; smallest baseline: "
                     f"{_cheapest(small.baseline, c)}{compared}.")
    return lines


def _cheapest(row: pd.Series | None, c: FrontComparison) -> str:
    if row is None:
        return "none"
    return f"{float(row[c.cost]):,.0f} (trial {row['trial']}, run {row['run_id']}, {c.accuracy} {row[c.accuracy]:.4f})"


def _drivers(df: pd.DataFrame, metric: str, maximize: bool, settings: list[str]) -> Section:
    """The optimisation history and which parameters mattered (fANOVA), for any program's sweep."""
    pictures = Section("What drove accuracy" if metric == "best_val_acc" else f"What drove {metric}",
                       figures={"history": plots.history(df, metric, maximize)})
    importances = importance(df, maximize)
    if len(settings) >= 2 and not finished(df).empty:  # the most important settings first
        ordered = [*importances, *(s for s in settings if s not in importances)]
        pictures.figures["parallel_coordinates"] = plots.parallel_coordinates(df, ordered, metric, maximize)
    if importances:
        signs = direction(df, maximize)
        pictures.figures["importance"] = plots.importance_bars(importances, signs)
        pictures.text.append("Importance (fANOVA; Spearman rho with the objective, + when more scored better): "
                             + ", ".join(f"{k} {v:.2f}" + ("" if math.isnan(signs.get(k, math.nan))
                                                           else f" ({signs[k]:+.2f})")
                                         for k, v in importances.items()))
    return pictures


def verdict_section(verdict: Verdict) -> Section:
    """The answer first: the verdict's sentences, every re-run config, and the chart of them."""
    text = [verdict.statement]
    text += [part.statement for part in (verdict.equal_params, verdict.compression) if part is not None]
    e = verdict.estimate
    low, high = e.prob_dendritic_better_ci
    text.append(f"P(a dendritic seed beats a baseline seed) = {e.prob_dendritic_better:.2f}, 95% CI "
                f"[{low:.2f}, {high:.2f}] (0.5: neither is better). Power for the declared effect (a "
                f"{e.min_effect:.0%} error reduction) at these seeds: {e.power:.2f}.")
    fresh = sorted({s for c in verdict.configs if c.fresh_seeds for s in c.seed_values})
    choice = sorted(set(verdict.seed_values) - set(fresh))
    text.append(f"How: {verdict.seeds} seeds per config (the choice: seeds {choice[0]}-{choice[-1]}"
                + (f"; the picks again on fresh seeds {fresh[0]}-{fresh[-1]}" if fresh else "")
                + f"; the data split fixed); {verdict.method}. 'sweep value' is what the sweep recorded for the "
                  "trial, 'replicate mean' the same metric over the re-runs: the gap is how much the sweep's pick was "
                  "flattered by its luck. The chart shows every seed (dots) beside the means and intervals.")
    for family, curve in verdict.fronts.items():  # --front: compression as a curve
        text.append(f"The {family} Pareto front, re-trained ({curve[0].cost_axis}: test accuracy, 95% CI): "
                    + "; ".join(f"{p.cost:,.0f}: {_percent(p.test_acc_mean)} {_percent_ci(p.test_acc_ci)}"
                                for p in curve) + ".")
    rows = [{"config": c.label, "round": "estimate (fresh seeds)" if c.fresh_seeds else "choice",
             "chosen because": c.chosen_because, "params": c.params, "MACs": c.macs,
             "seeds": c.n, "test acc mean": c.test_acc_mean, "test acc sd": c.test_acc_sd,
             "95% CI": "" if c.test_acc_ci is None else f"[{c.test_acc_ci[0]:.4f}, {c.test_acc_ci[1]:.4f}]",
             "per-seed test acc": " ".join(f"{v:.4f}" for v in c.test_acc_values),
             "sweep value": c.sweep_value, "replicate mean": c.replicate_value_mean,
             "failed": len(c.failed_runs)} for c in verdict.configs]
    chosen = {(side.run_id, side.fresh_seeds) for side in (verdict.dendritic, verdict.baseline)}
    return Section("Verdict: do dendrites help?", text, pd.DataFrame(rows),
                   {"verdict": plots.verdict_chart(verdict.configs, chosen)})


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _percent_ci(ci: list[float] | None) -> str:
    return "" if ci is None else f"[{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]"


def _capped(df: pd.DataFrame) -> list[Section]:
    """Finished trials the epoch cap stopped before training was complete: their numbers stand for an
    unfinished schedule, so the verdict leaves them out unless asked (--include-capped)."""
    done = finished(df)
    capped = done[done["stop_reason"] == EPOCH_CAP]
    if capped.empty:
        return []
    shown = capped[["trial", "run_id", "epochs_run", "best_val_acc", "dendrites_added"]].reset_index(drop=True)
    return [Section(f"{len(capped)} trials stopped by the epoch cap before training was complete",
                    [f"{len(capped)} of {len(done)} finished trials ran into `epochs` before PAI finished (or, without "
                     "dendrites, before they stopped improving): raise the sweep's `epochs`. The verdict leaves them "
                     "out of its candidates unless given --include-capped."], shown)]


def _failures(df: pd.DataFrame) -> list[Section]:
    failures = df[~df["state"].isin([Status.FINISHED, Status.RUNNING, Status.QUEUED])]
    if failures.empty:
        return []
    return [Section(f"{len(failures)} trials that did not finish",
                    table=failures[["trial", "run_id", "state", "reason"]].reset_index(drop=True))]


def _markdown_table(df: pd.DataFrame) -> str:
    def cell(value: object) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    rows = [" | ".join(df.columns), " | ".join("---" for _ in df.columns)]
    rows += [" | ".join(cell(v) for v in record) for record in df.itertuples(index=False)]
    return "\n".join(f"| {r} |" for r in rows)


def write_report(sections: list[Section], df: pd.DataFrame, out_dir: Path, title: str) -> Path:
    """Write report.html, report.md, plots/*.png and trials.csv; returns the HTML path."""
    plot_dir = out_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "trials.csv", index=False)
    md, body = [f"# {title}"], [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        md.append(f"\n## {section.title}\n")
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        for text in section.text:
            md.append(text + "\n")
            body.append(f"<p>{html.escape(text)}</p>")
        if section.table is not None and not section.table.empty:
            md.append(_markdown_table(section.table) + "\n")
            body.append(section.table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep=""))
        for name, png in section.figures.items():
            (plot_dir / f"{name}.png").write_bytes(png)
            md.append(f"![{name}](plots/{name}.png)\n")
            body.append(f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
    (out_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px}"
            "img{max-width:49%;margin:4px}</style></head><body>" + "\n".join(body) + "</body></html>")
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    return out_dir / "report.html"
