"""How many epochs PAI's schedule can need, checked against the `epochs` cap before anything trains.

A dendritic trial runs until PAI reports training complete; the cap is only a safety net. A config
whose cap falls short of its schedule is stopped with work left, its dendrites never all tried, and
its result is not the answer the config stands for. The bound is PAI's worst case: every dendrite up
to `max_dendrites` tried `max_dendrite_tries` times, each a full switch interval, plus the first
phase: (max_dendrites x max_dendrite_tries + 1) switch intervals, where a history-mode interval is at
least `n_epochs_to_switch + initial_history_after_switches` epochs (PAI's `switch_time`) and a fixed-mode
one `fixed_switch_num` (the first `first_fixed_switch_num` when that is longer).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KNOBS = {"history": ("max_dendrites", "max_dendrite_tries", "n_epochs_to_switch", "initial_history_after_switches"),
         "fixed": ("max_dendrites", "max_dendrite_tries", "fixed_switch_num", "first_fixed_switch_num")}


def epochs_needed(config: Mapping[str, Any]) -> int:
    """The epochs PAI's schedule can take for a dendritic config (a lower bound in history mode, where a
    phase lasts longer while it keeps improving)."""
    if config["switch_mode"] == "fixed":
        interval = config["fixed_switch_num"]
        first = max(interval, config["first_fixed_switch_num"])
    else:
        interval = first = config["n_epochs_to_switch"] + config["initial_history_after_switches"]
    return first + config["max_dendrites"] * config["max_dendrite_tries"] * interval


def cap_falls_short(config: Mapping[str, Any]) -> str | None:
    """Why the epoch cap may stop this config before PAI finishes (its schedule, the settings that set
    it), or None: it fits, or it is a baseline."""
    if not config["dendrites"]:
        return None
    needed = epochs_needed(config)
    if needed <= config["epochs"]:
        return None
    shown = ", ".join(f"{k}={config[k]}" for k in KNOBS[config["switch_mode"]])
    return (f"its {config['switch_mode']} schedule can take {needed} epochs ({shown}), more than "
            f"epochs={config['epochs']}")
