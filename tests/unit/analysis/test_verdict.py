"""analysis/verdict.py: plan (which configs), measure (their replicates' records) and decide (verdict.json),
in process on simulated trials whose truth is known."""
from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from analysis import verdict
from analysis.load import frame, row
from dendrisweep.contract import DataInfo, TrialRecord
from dendrisweep.sweep import SweepSpec, parse_sweep

BASE = 0.80


def noisy_spec(name: str, dendrites: bool) -> SweepSpec:
    return parse_sweep({"program": "noisy.py", "method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                        "parameters": {"dendrites": {"value": dendrites}, "width": {"values": [0.5, 1.0]},
                                       "lr": {"values": [0.1, 0.2, 0.3]}, "seed": {"value": 0}}}, Path(f"{name}.yaml"))


def params_of(config: dict[str, object]) -> int:
    return int(1000 * float(config["width"])) * (2 if config["dendrites"] else 1)  # type: ignore[arg-type]


def sweep_frame(dendrites: bool, rng: random.Random, effect: float = 0.0) -> pd.DataFrame:
    """A finished grid sweep of the stand-in: 6 configs, each scored truth + N(0, 0.01) on validation."""
    rows = []
    for number, (width, lr) in enumerate((w, lr) for w in (0.5, 1.0) for lr in (0.1, 0.2, 0.3)):
        config = {"dendrites": dendrites, "width": width, "lr": lr, "seed": 0}
        value = BASE + (effect if dendrites else 0.0) + rng.gauss(0, 0.01)
        record = TrialRecord(run_id=f"{'d' if dendrites else 'b'}{number}", status="finished", config=config,
                             best_val_acc=value, params=params_of(config), macs=10 * params_of(config))
        rows.append(row(record, state="finished", objective=value, source="optuna", trial=number))
    return frame(rows, ours=False)


def families(rng: random.Random, effect: float = 0.0) -> tuple[verdict.Family, verdict.Family]:
    return (verdict.Family(verdict.DENDRITIC, "dend", sweep_frame(True, rng, effect), noisy_spec("dend", True)),
            verdict.Family(verdict.BASELINE, "base", sweep_frame(False, rng), noisy_spec("base", False)))


def replicate_records(candidates: list[verdict.Candidate], seeds: list[int], rng: random.Random, effect: float,
                      failing_seed: int | None = None) -> dict[str, TrialRecord]:
    """What the replicates would record: truth + fresh noise on validation and test, per seed."""
    records = {}
    for c in candidates:
        for seed in seeds:
            key = verdict.replicate_key(c, seed)
            if seed == failing_seed:
                records[key] = TrialRecord(run_id=key, status="failed", reason="exit code 1: scripted crash")
                continue
            truth = BASE + (effect if c.config["dendrites"] else 0.0)
            val, test = truth + rng.gauss(0, 0.01), truth + rng.gauss(0, 0.01)
            records[key] = TrialRecord(run_id=key, status="finished", config={**c.config, "seed": seed},
                                       best_val_acc=val, test_acc=test, objective=val, params=params_of(c.config),
                                       macs=10 * params_of(c.config))
    return records


def simulated_verdict(rng: random.Random, effect: float, n_seeds: int, top: int = 1,
                      failing_seed: int | None = None) -> dict[str, object]:
    dendritic, baseline = families(rng, effect)
    candidates = verdict.plan(dendritic, baseline, top, within_pp=0.5)
    seeds = verdict.seeds(n_seeds)
    measured = verdict.measure(candidates, seeds, replicate_records(candidates, seeds, rng, effect, failing_seed))
    return verdict.decide(measured, maximize=True, n_seeds=n_seeds, within_pp=0.5)


def test_plan_takes_the_top_configs_of_each_sweep_and_what_the_questions_need() -> None:
    dendritic, baseline = families(random.Random(1))
    candidates = verdict.plan(dendritic, baseline, top=2, within_pp=0.5)
    by_family = {name: [c for c in candidates if c.family == name] for name in (verdict.DENDRITIC, verdict.BASELINE)}
    ranked = dendritic.df.sort_values("objective", ascending=False)
    assert [c.run_id for c in by_family[verdict.DENDRITIC][:2]] == list(ranked["run_id"][:2])
    assert all("seed" not in c.config and c.sweep_seed == 0 for c in candidates)
    for c in by_family[verdict.DENDRITIC][:2]:  # each dendritic pick has a baseline at least its size
        assert any(b.params is not None and c.params is not None and b.params >= c.params
                   for b in by_family[verdict.BASELINE])
    assert len({(c.family, str(sorted(c.config.items()))) for c in candidates}) == len(candidates)  # once each


def test_a_config_the_sweep_ran_twice_is_planned_once() -> None:
    dendritic, baseline = families(random.Random(2))
    twice = pd.concat([dendritic.df, dendritic.df.iloc[[0]].assign(run_id="again", objective=2.0)],
                      ignore_index=True)
    candidates = verdict.plan(verdict.Family(verdict.DENDRITIC, "dend", twice, dendritic.spec), baseline, 2, 0.5)
    assert sum(c.family == verdict.DENDRITIC and c.config == candidates[0].config for c in candidates) == 1


def test_replicates_are_every_config_with_every_seed_grouped_by_config() -> None:
    dendritic, baseline = families(random.Random(3))
    candidates = verdict.plan(dendritic, baseline, 1, 0.5)
    runs = verdict.replicates(candidates, verdict.seeds(3), "dend-verdict")
    assert len(runs) == 3 * len(candidates) and len({r.key for r in runs}) == len(runs)
    first = candidates[0]
    assert {r.params["seed"] for r in runs if r.group == f"dend-verdict:{first.family}-{first.run_id}"} == {
        1000, 1001, 1002}


def test_a_known_effect_is_inside_the_interval_and_flagged() -> None:
    found = simulated_verdict(random.Random(4), effect=0.05, n_seeds=5, top=2, failing_seed=1004)
    low, high = found["accuracy_diff_ci"]  # type: ignore[misc]
    assert low <= 5.0 <= high and low > 0 and found["significant"]
    assert str(found["statement"]).startswith("Dendrites help:") and "4 seeds each" in str(found["statement"])
    for config in found["configs"]:  # type: ignore[attr-defined]
        assert config["n"] == 4 and len(config["failed_runs"]) == 1 and "scripted crash" in config["failed_runs"][0]
        assert config["selection_gap"] == pytest.approx(config["sweep_value"] - config["replicate_value_mean"])


def test_with_no_true_effect_the_verdict_rarely_claims_one() -> None:
    """20 independent repeats (fresh noise each) at alpha 0.05: at most 2 false claims."""
    rng = random.Random(5)
    found = [simulated_verdict(rng, effect=0.0, n_seeds=3) for _ in range(20)]
    assert sum(bool(f["significant"]) for f in found) <= 2
    quiet = next(f for f in found if not f["significant"])
    statement = str(quiet["statement"])
    assert statement.startswith("No evidence of a difference at 3 seeds each:")
    assert f"about {quiet['seeds_to_resolve']} seeds per config would resolve" in statement
    assert "help" not in statement and "hurt" not in statement


def test_without_two_finished_replicates_there_is_no_verdict() -> None:
    rng = random.Random(6)
    dendritic, baseline = families(rng)
    candidates = verdict.plan(dendritic, baseline, 1, 0.5)
    records = replicate_records(candidates, verdict.seeds(2), rng, 0.0, failing_seed=1001)
    with pytest.raises(verdict.NoVerdict, match="no dendritic config has 2 finished replicates.*scripted crash"):
        verdict.decide(verdict.measure(candidates, verdict.seeds(2), records), True, 2, 0.5)


def test_verdict_seeds_are_fixed_and_fresh() -> None:
    assert verdict.seeds(3) == [1000, 1001, 1002] and verdict.seeds(5)[:3] == verdict.seeds(3)


def test_trials_the_epoch_cap_stopped_are_not_candidates_unless_asked() -> None:
    dendritic, baseline = families(random.Random(7))
    best = dendritic.df["objective"].idxmax()
    dendritic.df.loc[best, "stop_reason"] = "epoch cap"
    capped_run = dendritic.df.loc[best, "run_id"]
    assert capped_run not in {c.run_id for c in verdict.plan(dendritic, baseline, 2, 0.5)}
    assert capped_run in {c.run_id for c in verdict.plan(dendritic, baseline, 2, 0.5, include_capped=True)}


def test_the_answer_says_its_scope_and_warns_when_the_search_was_not_the_same() -> None:
    record = TrialRecord(status="finished", versions={"perforatedai": "3.2.9"},
                         data=DataInfo(source="built-in keywords", digest="d", train=960, val=300, test=240))
    scope = verdict.scope([record, TrialRecord(status="failed")])
    assert scope["dendrites"] == ("gradient-descent dendrites (open perforatedai 3.2.9), not Perforated "
                                  "Backpropagation")
    assert scope["splits"] == {"train": 960, "validation": 300, "test": 240}
    fair = verdict.qualify({"statement": "No evidence."}, scope, [])
    assert fair["statement"] == ("No evidence. Scope: gradient-descent dendrites (open perforatedai 3.2.9), not "
                                 "Perforated Backpropagation; data: built-in keywords; splits: train 960, validation "
                                 "300, test 240 samples.")
    assert fair["warning"] is None and fair["search_differences"] == [] and fair["scope"] == scope
    unfair = verdict.qualify({"statement": "No evidence."}, scope, ["run_cap: 4 vs 6"])
    assert unfair["statement"].endswith("Warning: the two sweeps did not get the same search, so this is not an "
                                        "equal-effort comparison: run_cap: 4 vs 6.")


def test_two_sides_on_different_data_are_flagged() -> None:
    records = [TrialRecord(status="finished", data=DataInfo(digest=digest)) for digest in ("a", "b")]
    found = verdict.qualify({"statement": "x"}, verdict.scope(records), [])
    assert found["search_differences"] == ["the two sides trained on different data"]
    assert verdict.scope(records)["dendrites"] == "dendrites as the sweeps' program implements them"


def test_a_dendritic_pick_whose_models_kept_no_dendrite_says_so() -> None:
    rng = random.Random(8)
    dendritic, baseline = families(rng)
    candidates = verdict.plan(dendritic, baseline, 1, 0.5)
    records = replicate_records(candidates, verdict.seeds(3), rng, 0.0)
    for record in records.values():
        record.dendrites_added = 0
    found = verdict.decide(verdict.measure(candidates, verdict.seeds(3), records), True, 3, 0.5)
    assert ("the dendritic config's replicates kept a median of 0 dendrites: PAI removes a dendrite that does not "
            "improve validation") in str(found["statement"])
    assert found["dendritic"]["dendrites_added"] == 0  # type: ignore[index]
