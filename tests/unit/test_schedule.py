"""schedule.py: the epochs PAI's schedule can take, against the epoch cap."""
from __future__ import annotations

from typing import Any

from dendrisweep.schedule import cap_falls_short, epochs_needed
from dendrisweep.settings import defaults


def config(**overrides: Any) -> dict[str, Any]:
    return {**defaults(), **overrides}


def test_a_history_schedule_needs_a_patience_window_per_dendrite_try_and_one_more() -> None:
    # (max_dendrites x tries + 1) windows of n_epochs_to_switch + initial_history_after_switches
    assert epochs_needed(config(max_dendrites=3, max_dendrite_tries=2, n_epochs_to_switch=10)) == 70
    assert epochs_needed(config(max_dendrites=1, max_dendrite_tries=1, n_epochs_to_switch=10,
                                initial_history_after_switches=5)) == 30


def test_a_fixed_schedule_counts_its_longer_first_phase() -> None:
    fixed = config(switch_mode="fixed", max_dendrites=2, max_dendrite_tries=1, fixed_switch_num=10)
    assert epochs_needed(fixed) == 30
    assert epochs_needed({**fixed, "first_fixed_switch_num": 25}) == 45
    assert epochs_needed({**fixed, "first_fixed_switch_num": 5}) == 30  # PAI ignores a shorter first phase


def test_the_default_config_fits_its_cap_and_a_baseline_never_falls_short() -> None:
    assert cap_falls_short(config()) is None
    assert cap_falls_short(config(dendrites=False, epochs=1)) is None


def test_a_cap_that_falls_short_says_by_how_much_and_why() -> None:
    short = cap_falls_short(config(switch_mode="fixed", max_dendrites=8, max_dendrite_tries=2, fixed_switch_num=30,
                                   epochs=100))
    assert short == ("its fixed schedule can take 510 epochs (max_dendrites=8, max_dendrite_tries=2, "
                     "fixed_switch_num=30, first_fixed_switch_num=-1), more than epochs=100")
