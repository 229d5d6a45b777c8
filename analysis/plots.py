"""The pictures of a sweep report, as PNG bytes (matplotlib, no display needed)."""
from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from analysis.rank import finished, pareto_front


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


def pareto(df: pd.DataFrame, cost: str, baseline: pd.DataFrame | None = None) -> bytes:
    """Accuracy against model cost (parameters or MACs), the Pareto front drawn as a line."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    done = finished(df).dropna(subset=[cost])
    ax.scatter(done[cost].astype(float), done["best_val_acc"], s=18, alpha=0.6, label="dendritic trials")
    front = pareto_front(df, cost)
    ax.plot(front[cost].astype(float), front["best_val_acc"], "o-", color="tab:orange", label="Pareto front")
    if baseline is not None and not finished(baseline).empty:
        base = finished(baseline).dropna(subset=[cost])
        ax.scatter(base[cost].astype(float), base["best_val_acc"], s=22, marker="s", color="tab:gray",
                   label="baseline trials")
    ax.set_xscale("log")
    ax.set(xlabel=cost, ylabel="best val accuracy", title=f"Accuracy vs {cost}")
    ax.legend(loc="lower right")
    return _png(fig)


def importance_bars(importances: dict[str, float]) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 0.4 * len(importances) + 1.2))
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set(xlabel="fANOVA importance", title="Which settings mattered")
    return _png(fig)


def verdict_chart(configs: list[dict[str, Any]], chosen: set[tuple[str, bool]]) -> bytes:
    """Every re-run config: each seed's test accuracy (dots), the mean and its 95 % interval against
    parameters, both families; an estimate on fresh seeds sits just right of its choice round; the two
    the verdict compares are ringed."""
    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"dendritic": "tab:orange", "baseline": "tab:gray"}
    labelled: set[str] = set()
    for config in configs:
        if config["test_acc_mean"] is None or config["params"] is None:
            continue
        family, mean = config["family"], config["test_acc_mean"]
        x = float(config["params"]) * (1.12 if config["fresh_seeds"] else 1.0)
        colour = colours.get(family, "tab:blue")
        values = config["test_acc_values"]
        ax.scatter([x * 1.03] * len(values), values, s=9, color=colour, alpha=0.5, linewidths=0)
        ci = config["test_acc_ci"] or [mean, mean]
        ax.errorbar(x, mean, yerr=[[mean - ci[0]], [ci[1] - mean]], fmt="o" if family == "dendritic" else "s",
                    color=colour, capsize=4, ms=7, mfc="white" if config["fresh_seeds"] else colour,
                    label=f"{family} (mean, 95% CI; hollow: fresh seeds)" if family not in labelled else None)
        labelled.add(family)
        if (config["run_id"], config["fresh_seeds"]) in chosen:
            ax.plot(x, mean, "o", ms=15, mfc="none", mec="black")
    ax.set_xscale("log")
    ax.margins(x=0.12)  # keep the end points (and their rings) off the frame
    ax.set(xlabel="parameters", ylabel="test accuracy (replicates)", title="Re-run configs: accuracy vs size")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8, frameon=False)
    return _png(fig)
