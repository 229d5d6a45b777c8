"""The pictures of a sweep report, as PNG bytes (matplotlib, no display needed)."""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.pareto import BASELINE, COST_LABELS, DENDRITIC, FrontComparison
from analysis.rank import finished
from dendrisweep.verdict import ConfigResult


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def history(df: pd.DataFrame, metric: str, maximize: bool) -> bytes:
    """Objective per trial, in order, with the best so far."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    done = finished(df).sort_values("trial")
    order = (done["trial"].astype(float) if done["trial"].notna().all()
             else pd.Series(range(len(done)), index=done.index))
    ax.scatter(order, done["objective"], s=18, label="trial")
    running = done["objective"].cummax() if maximize else done["objective"].cummin()
    ax.step(order, running, where="post", color="tab:orange", label="best so far")
    ax.set(xlabel="trial", ylabel=metric, title="Optimisation history")
    ax.legend(loc="lower right" if maximize else "upper right")
    return _png(fig)


def accuracy_vs(df: pd.DataFrame, column: str, log: bool = False) -> bytes:
    """Best validation accuracy against one setting or measurement (categories as strips)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    done = finished(df).dropna(subset=[column, "best_val_acc"])
    values = done[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        ax.scatter(values.astype(float), done["best_val_acc"], s=18, c=done["dendrites_added"].astype(float),
                   cmap="viridis")
        if log:
            ax.set_xscale("log")
    else:
        labels = sorted(values.map(str).unique())
        for i, label in enumerate(labels):
            group = done[values.map(str) == label]["best_val_acc"]
            ax.scatter([i] * len(group), group, s=18, alpha=0.7)
        ax.set_xticks(range(len(labels)), labels)
    ax.set(xlabel=column, ylabel="best val accuracy", title=f"Accuracy vs {column}")
    return _png(fig)


FAMILY_STYLE = {DENDRITIC: ("tab:orange", "o"), BASELINE: ("tab:gray", "s")}  # colour, marker: every chart


def pareto(comparison: FrontComparison) -> bytes:
    """Both families' trials and Pareto fronts on one cost axis (log), each front's dominated area up to
    the shared reference point shaded: that area, in accuracy x decades, is its hypervolume."""
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    cost, accuracy, reference = comparison.cost, comparison.accuracy, comparison.reference
    for family, front in comparison.fronts.items():
        colour, marker = FAMILY_STYLE[family]
        trials = comparison.trials[family]
        ax.scatter(trials[cost].astype(float), trials[accuracy], s=16, marker=marker, color=colour, alpha=0.35,
                   linewidths=0, label=f"{family} trials")
        xs = [*front[cost].astype(float), reference.cost]  # the front's staircase, out to the cost ceiling
        ys = [*front[accuracy].astype(float), float(front[accuracy].iloc[-1])]
        ax.fill_between(xs, ys, reference.accuracy, step="post", color=colour, alpha=0.12, linewidth=0)
        ax.step(xs, ys, where="post", color=colour, lw=1.6)
        ax.plot(xs[:-1], ys[:-1], marker, color=colour, mec="black", mew=0.6, ms=6,
                label=f"{family} front (hypervolume {comparison.hypervolumes[family]:.3g})")
    ax.plot(reference.cost, reference.accuracy, "X", color="black", ms=8,
            label=f"reference point ({reference.accuracy:.3f}, {reference.cost:.3g})")
    ax.set_xscale("log")
    ax.set(xlabel=f"{COST_LABELS.get(cost, cost)} (log scale, lower is better)",
           ylabel=f"{accuracy} (higher is better)", title=f"Pareto fronts: {accuracy} vs {COST_LABELS.get(cost, cost)}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    return _png(fig)


def importance_bars(importances: dict[str, float], signs: dict[str, float] | None = None) -> bytes:
    """fANOVA importance per setting; with `signs` (rank.direction), coloured by which way it helps."""
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(importances) + 1.6))
    names = list(importances)[::-1]
    signs = signs or {}
    rhos = {n: signs[n] for n in names if n in signs and not math.isnan(signs[n])}  # NaN: a category
    colours = ["tab:gray" if n not in rhos else "tab:green" if rhos[n] > 0 else "tab:red" for n in names]
    ax.barh(names, [importances[n] for n in names], color=colours)
    for y, name in enumerate(names):
        rho = rhos.get(name)
        if rho is not None:
            ax.annotate(f"{rho:+.2f}", (importances[name], y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=8)
    label = "fANOVA importance"
    if signs:
        label += "\ngreen: more scored better, red: worse (rho);\ngray: a choice"
    ax.set(xlabel=label, title="Which settings mattered")
    return _png(fig)


PARALLEL_AXES = 8  # settings drawn at most (pass them most important first): more is unreadable


def parallel_coordinates(df: pd.DataFrame, settings: list[str], metric: str, maximize: bool) -> bytes:
    """One line per finished trial across its swept settings to its objective, coloured by the objective
    (the view W&B opens a sweep with); ranges over 100x on a log axis, categories evenly spaced."""
    done = finished(df).sort_values("objective", ascending=maximize)  # the best drawn last, on top
    settings = settings[:PARALLEL_AXES]
    axes = [*settings, "objective"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(axes)), 4.2))
    scaled, ticks = {}, {}
    for name in axes:
        values = done[name]
        if values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all():
            x = values.astype(float)
            log = bool(x.min() > 0 and x.max() / x.min() >= 100)
            x = np.log10(x) if log else x
            low, high = float(x.min()), float(x.max())
            scaled[name] = (x - low) / (high - low) if high > low else x * 0 + 0.5
            shown = (10 ** low, 10 ** high) if log else (low, high)
            ticks[name] = [(0.0, f"{shown[0]:.3g}"), (1.0, f"{shown[1]:.3g}")]
        else:
            labels = sorted(values.map(str).unique())
            codes = {label: i / max(len(labels) - 1, 1) for i, label in enumerate(labels)}
            scaled[name] = values.map(str).map(codes).astype(float)
            ticks[name] = [(code, label) for label, code in codes.items()]
    colours = plt.get_cmap("viridis")(scaled["objective"].to_numpy())
    for i in range(len(done)):
        ax.plot(range(len(axes)), [scaled[n].iloc[i] for n in axes], color=colours[i], alpha=0.6, lw=1)
    for position, name in enumerate(axes):
        ax.axvline(position, color="black", lw=0.6)
        for y, label in ticks[name]:
            ax.annotate(label, (position, y), xytext=(3, 0), textcoords="offset points", fontsize=7, va="center")
    ax.set_xticks(range(len(axes)), [*settings, metric], rotation=20, ha="right")
    ax.set_yticks([])
    ax.set_xlim(-0.15, len(axes) - 1 + 0.45)  # room for the last axis's labels
    ax.set(title=f"Parallel coordinates ({len(done)} finished trials)\ncolour: {metric}, "
                 f"{'higher' if maximize else 'lower'} is better")
    return _png(fig)


def learning_curves(curves: dict[str, pd.Series], key: str = "val/acc") -> bytes:
    """Per-epoch curves of some runs (load.learning_curves), one line each."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for label, curve in curves.items():
        ax.plot(curve.index.astype(float), curve.to_numpy(dtype=float), marker=".", label=label)
    ax.set(xlabel="epoch", ylabel=key, title="Learning curves")
    if curves:
        ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


def verdict_chart(configs: list[ConfigResult], chosen: set[tuple[str, bool]]) -> bytes:
    """Every re-run config: each seed's test accuracy (dots), the mean and its 95 % interval against
    parameters, both families; an estimate on fresh seeds sits just right of its choice round; the two
    the verdict compares are ringed."""
    fig, ax = plt.subplots(figsize=(7, 4))
    labelled: set[str] = set()
    for config in configs:
        if config.test_acc_mean is None or config.params is None:
            continue
        family, mean = config.family, config.test_acc_mean
        x = float(config.params) * (1.12 if config.fresh_seeds else 1.0)
        colour, marker = FAMILY_STYLE[family]
        values = config.test_acc_values
        ax.scatter([x * 1.03] * len(values), values, s=9, color=colour, alpha=0.5, linewidths=0)
        ci = config.test_acc_ci or [mean, mean]
        ax.errorbar(x, mean, yerr=[[mean - ci[0]], [ci[1] - mean]], fmt=marker,
                    color=colour, capsize=4, ms=7, mfc="white" if config.fresh_seeds else colour,
                    label=f"{family} (mean, 95% CI; hollow: fresh seeds)" if family not in labelled else None)
        labelled.add(family)
        if (config.run_id, config.fresh_seeds) in chosen:
            ax.plot(x, mean, "o", ms=15, mfc="none", mec="black")
    ax.set_xscale("log")
    ax.margins(x=0.12)  # keep the end points (and their rings) off the frame
    ax.set(xlabel="parameters", ylabel="test accuracy (replicates)", title="Re-run configs: accuracy vs size")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8, frameon=False)
    return _png(fig)
