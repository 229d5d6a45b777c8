"""verdict/record.py: verdict.json as a typed Verdict, the same keys on disk, its schema version checked."""
from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from analysis import verdict
from dendrisweep.errors import UsageError
from dendrisweep.verdict import Schedule, Scope, Studies, Verdict, read_verdict
from tests.unit.analysis.test_verdict import measured, simulated_verdict

# verdict.json's keys as the dict-built verdict wrote them (before the type), plus the schema version
KEYS = {"schema_version", "statement", "error_reduction", "error_reduction_ci", "accuracy_diff_pp", "accuracy_diff_ci",
        "p_value", "significant", "seeds_to_resolve", "population", "test_examples", "prob_dendritic_better",
        "prob_dendritic_better_ci", "min_effect", "power", "detectable_error_reduction", "seeds", "seed_values",
        "alpha", "exploratory", "method", "dendritic", "baseline", "equal_params", "compression", "fronts", "configs",
        "scope", "search_differences", "warning", "looks", "schedule", "studies", "created"}
CONFIG_KEYS = {"label", "family", "trial", "run_id", "chosen_because", "config", "sweep_seed", "runs", "n",
               "seed_values", "fresh_seeds", "test_acc_mean", "test_acc_sd", "test_acc_ci", "test_acc_values",
               "val_values", "params", "macs", "dendrites_added", "sweep_value", "replicate_value_mean",
               "selection_gap", "failed_runs"}
COMPARISON_KEYS = {"baseline", "accuracy_diff_pp", "accuracy_diff_ci", "p_value", "significant", "spread",
                   "population", "test_examples", "error_reduction", "error_reduction_ci", "prob_dendritic_better",
                   "prob_dendritic_better_ci", "min_effect", "power", "detectable_error_reduction",
                   "seeds_to_resolve", "lower_bound_pp", "one_sided_p"}


def complete(found: Verdict) -> Verdict:
    """A verdict as `run` completes it before writing."""
    scope = Scope("dendrites as the sweeps' program implements them", None, "built-in", ["d"],
                  {"train": 960, "validation": 300, "test": None})
    return replace(verdict.qualify(found, scope, ["run_cap: 3 vs 2"]), looks=[5],
                   schedule=Schedule([5, 10], [0.005, 0.048]),
                   studies=Studies("dend", "base", "dend-verdict", "sqlite:///x.db", "runs/dend-verdict"))


@pytest.mark.parametrize("effect", [0.0, 0.08])
def test_a_verdict_round_trips_through_verdict_json(effect: float, tmp_path: Path) -> None:
    found = complete(simulated_verdict(random.Random(4), effect=effect, n_seeds=5, top=2))
    written = verdict.write(found, tmp_path)
    raw = json.loads((tmp_path / verdict.VERDICT_FILE).read_text())
    assert set(raw) == KEYS and next(iter(raw)) == "schema_version" and raw["schema_version"] == 1
    assert all(set(c) == CONFIG_KEYS for c in [raw["dendritic"], raw["baseline"], *raw["configs"]])
    assert Verdict.from_json(written.to_json()) == written
    assert read_verdict(tmp_path / verdict.VERDICT_FILE) == written and written.to_json() == raw
    assert verdict.read(tmp_path / verdict.VERDICT_FILE, "dend") == written
    assert verdict.read(tmp_path / verdict.VERDICT_FILE, "another sweep") is None


def test_secondary_claims_keep_their_shapes() -> None:
    d = measured(verdict.DENDRITIC, 900, [0.91, 0.92, 0.91, 0.92, 0.91])
    larger = measured(verdict.BASELINE, 2000, [0.90, 0.91, 0.90, 0.91, 0.90])
    best = measured(verdict.BASELINE, 1000, [0.90, 0.91, 0.90, 0.90, 0.90])
    equal, compression = verdict._secondary(verdict._equal_params(d, larger, best, verdict.Rules()),
                                            verdict._compression([d], best, 0.5, verdict.Rules()))
    found = replace(simulated_verdict(random.Random(4), effect=0.0, n_seeds=3), equal_params=equal,
                    compression=compression)
    raw = found.to_json()
    assert set(raw["equal_params"]) == COMPARISON_KEYS | {"baseline_config", "same_as_headline", "statement"}
    assert raw["equal_params"]["statement"].startswith("At equal size: the dendritic config")
    assert set(raw["compression"]) == {"within_pp", "config", "tested", "p_value", "statement", "params_reduction",
                                       "macs_reduction", "accuracy_diff_pp", "accuracy_diff_lower_bound_pp", "holds"}
    failed = verdict._compression([], best, 0.5, verdict.Rules())
    missing = replace(found, equal_params=verdict.EqualSize("no such baseline"), compression=failed)
    assert missing.to_json()["equal_params"] == {"statement": "no such baseline"}
    assert set(missing.to_json()["compression"]) == {"within_pp", "config", "tested", "p_value", "statement"}
    for one in (found, missing):
        assert Verdict.from_json(json.loads(json.dumps(one.to_json()))) == one


def test_a_newer_schema_is_one_clear_line(tmp_path: Path) -> None:
    raw = simulated_verdict(random.Random(4), effect=0.0, n_seeds=3).to_json()
    path = tmp_path / "verdict.json"
    path.write_text(json.dumps({**raw, "schema_version": 2}))
    with pytest.raises(UsageError, match="schema version 2; this dendrisweep reads version 1") as error:
        read_verdict(path)
    assert len(str(error.value).splitlines()) == 1
    path.write_text(json.dumps({k: v for k, v in raw.items() if k != "schema_version"}))  # the first files
    assert read_verdict(path) == Verdict.from_json(raw)
    path.write_text(json.dumps({k: v for k, v in raw.items() if k != "method"}))
    with pytest.raises(UsageError, match="Verdict lacks 'method'"):
        read_verdict(path)
