"""analysis/verdict.py: plan (which configs), measure (their replicates' records) and decide (verdict.json),
in process on simulated trials whose truth is known."""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from analysis import stats, verdict
from analysis.load import frame, row
from dendrisweep.contract import DataInfo, TrialRecord, pack
from dendrisweep.sweep import SweepSpec, parse_sweep
from dendrisweep.verdict import Schedule, Verdict

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


EXAMPLES = 200  # the simulated test split


class Replicates:
    """What the replicates would record: per seed a run quality shared by validation and test (a lucky seed is
    lucky on both, so choosing on validation flatters the test), each of the split's examples right with the
    config's truth plus that quality; the predictions saved as a trial saves them."""

    def __init__(self, rng: random.Random, effect: float, failing_seed: int | None = None) -> None:
        self.rng, self.effect, self.failing_seed = rng, effect, failing_seed
        self.labels = [rng.randrange(4) for _ in range(EXAMPLES)]
        self.asked: list[int] = []

    def __call__(self, candidates: Sequence[verdict.Candidate], seeds: Sequence[int]) -> dict[str, TrialRecord]:
        records = {}
        for c in candidates:
            for seed in seeds:
                self.asked.append(seed)
                key = verdict.replicate_key(c, seed)
                if seed == self.failing_seed:
                    records[key] = TrialRecord(run_id=key, status="failed", reason="exit code 1: scripted crash")
                    continue
                truth = BASE + (self.effect if c.config["dendrites"] else 0.0) + self.rng.gauss(0, 0.01)
                val = truth + self.rng.gauss(0, 0.01)
                predictions = [label if self.rng.random() < truth else (label + 1) % 4 for label in self.labels]
                test = sum(p == label for p, label in zip(predictions, self.labels, strict=True)) / EXAMPLES
                records[key] = TrialRecord(run_id=key, status="finished", config={**c.config, "seed": seed},
                                           best_val_acc=val, test_acc=test, objective=val,
                                           params=params_of(c.config), macs=10 * params_of(c.config),
                                           test_predictions=pack(predictions), test_labels=pack(self.labels),
                                           data=DataInfo(digest="split"))
        return records


def simulated_verdict(rng: random.Random, effect: float, n_seeds: int, top: int = 1, failing_seed: int | None = None,
                      rules: verdict.Rules | None = None) -> Verdict:
    dendritic, baseline = families(rng, effect)
    candidates = verdict.plan(dendritic, baseline, top, within_pp=0.5)
    estimates, measured, _ = verdict.evaluate(candidates, Replicates(rng, effect, failing_seed), n_seeds, n_seeds,
                                              maximize=True)
    return verdict.decide(estimates, measured, n_seeds, 0.5, rules or verdict.Rules())


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


def test_a_known_effect_is_found_with_its_interval_on_fresh_seeds() -> None:
    found = simulated_verdict(random.Random(4), effect=0.08, n_seeds=5, top=2, failing_seed=1004)
    assert found.estimate.accuracy_diff_ci is not None
    low, high = found.estimate.accuracy_diff_ci
    assert low <= 8.0 <= high and low > 0 and found.estimate.significant and found.estimate.population == "task"
    assert found.statement.startswith("Dendrites help:") and "5 seeds each" in found.statement
    for pick in (found.dendritic, found.baseline):  # chosen among 2: estimated on seeds that chose nothing
        assert pick.fresh_seeds and pick.seed_values == verdict.seeds(5, verdict.FRESH_SEED)
    choice = [c for c in found.configs if not c.fresh_seeds]
    for config in choice:  # the choice's round lost seed 1004 and says why
        assert config.n == 4 and len(config.failed_runs) == 1 and "scripted crash" in config.failed_runs[0]
        assert config.replicate_value_mean is not None
        assert config.selection_gap == pytest.approx(config.sweep_value - config.replicate_value_mean)


def test_a_pick_that_was_the_only_candidate_is_not_replicated_again() -> None:
    rng = random.Random(5)
    dendritic, baseline = families(rng)
    candidates = [c for c in verdict.plan(dendritic, baseline, 1, 0.5) if c.headline]
    replicate = Replicates(rng, 0.0)
    estimates, _, _ = verdict.evaluate(candidates, replicate, 3, 3, maximize=True)
    assert sorted(set(replicate.asked)) == verdict.seeds(3) and not estimates[verdict.DENDRITIC].fresh


def test_both_families_get_the_same_number_of_headline_candidates() -> None:
    dendritic, baseline = families(random.Random(6))
    candidates = verdict.plan(dendritic, baseline, top=3, within_pp=0.5)
    assert [sum(c.headline for c in candidates if c.family == name) for name in (verdict.DENDRITIC,
                                                                                 verdict.BASELINE)] == [3, 3]


def test_with_no_true_effect_the_statement_claims_nothing_and_says_what_more_seeds_would_find() -> None:
    found = simulated_verdict(random.Random(7), effect=0.0, n_seeds=3)
    statement = found.statement
    assert not found.estimate.significant and statement.startswith("No evidence of a difference at 3 seeds each:")
    assert "on this task (new seeds and new test examples)" in statement
    assert "a 10% error reduction (the declared effect) needs about" in statement or "no number of seeds" in statement
    assert "help" not in statement and "hurt" not in statement
    assert found.estimate.error_reduction_ci is not None
    low, high = found.estimate.error_reduction_ci
    assert low < 0 < high  # the two intervals agree
    assert 0 < found.estimate.power < 1 and found.estimate.min_effect == verdict.MIN_EFFECT


def test_without_two_finished_replicates_there_is_no_verdict() -> None:
    rng = random.Random(8)
    dendritic, baseline = families(rng)
    candidates = verdict.plan(dendritic, baseline, 1, 0.5)
    with pytest.raises(verdict.NoVerdict, match="no dendritic config has 2 finished replicates.*scripted crash"):
        verdict.evaluate(candidates, Replicates(rng, 0.0, failing_seed=1001), 2, 2, maximize=True)


def measured(family: str, params: int, accuracies: list[float], label: str = "") -> verdict.Measured:
    candidate = verdict.Candidate(family, None, label or f"{family}{params}", "test", 0.8, params, {}, 0)
    return verdict.Measured(candidate, verdict.seeds(len(accuracies)), stats.describe(accuracies),
                            stats.describe(accuracies), stats.Outcomes.of(accuracies), params, None)


def test_compression_is_tested_from_the_largest_smaller_config_down_and_stops_at_the_first_failure() -> None:
    best_baseline = measured(verdict.BASELINE, 1000, [0.90, 0.91, 0.90, 0.91, 0.90])
    ladder = [measured(verdict.DENDRITIC, 900, [0.91, 0.92, 0.91, 0.92, 0.91]),  # passes
              measured(verdict.DENDRITIC, 500, [0.80, 0.82, 0.81, 0.80, 0.82]),  # fails: the sequence stops
              measured(verdict.DENDRITIC, 100, [0.91, 0.92, 0.91, 0.92, 0.91])]  # would pass, never tested
    found = verdict._compression(ladder, best_baseline, 0.5, verdict.Rules())
    assert found.config is not None and found.config.params == 900
    assert found.tested == [m.candidate.label for m in ladder[:2]]


def test_a_schedule_tests_each_look_at_its_level_and_an_undeclared_look_is_exploratory() -> None:
    levels = stats.spending([5, 10, 20])
    first, looks, schedule = verdict.rules(verdict.Request(seeds=5, schedule=(5, 10, 20)), None)
    assert first.alpha == pytest.approx(levels[0]) and first.exploratory is None
    assert looks == [5] and schedule == Schedule([5, 10, 20], levels)
    earlier = simulated_verdict(random.Random(4), effect=0.08, n_seeds=5)
    second, _, _ = verdict.rules(verdict.Request(seeds=10), replace(earlier, looks=looks, schedule=schedule))
    assert second.alpha == pytest.approx(levels[1]) and second.exploratory is None  # the schedule is remembered
    unplanned, looks, _ = verdict.rules(verdict.Request(seeds=10), replace(earlier, looks=[5]))
    assert looks == [5, 10] and unplanned.exploratory and "--schedule" in unplanned.exploratory
    found = simulated_verdict(random.Random(4), effect=0.08, n_seeds=5, top=2, rules=unplanned)
    assert not found.estimate.significant  # an exploratory look claims nothing, however small its p


def test_no_seed_varying_is_no_claim() -> None:
    d, b = measured(verdict.DENDRITIC, 10, [0.91] * 4), measured(verdict.BASELINE, 10, [0.90] * 4)
    found = verdict.compare(d, b)
    assert found.accuracy_diff_ci is not None
    assert not found.significant and not found.spread and found.accuracy_diff_ci[0] < 1.0 < found.accuracy_diff_ci[1]
    assert "no seed varied" in verdict.headline(d, b, found)
    assert "on this data set's test split" in verdict.headline(d, b, found)  # no per-example outcomes


def test_verdict_seeds_are_fixed_and_the_estimates_are_apart_from_the_choices() -> None:
    assert verdict.seeds(3) == [1000, 1001, 1002] and verdict.seeds(5)[:3] == verdict.seeds(3)
    assert not set(verdict.seeds(500)) & set(verdict.seeds(500, verdict.FRESH_SEED))


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
    assert scope.dendrites == ("gradient-descent dendrites (open perforatedai 3.2.9), not Perforated "
                               "Backpropagation")
    assert scope.splits == {"train": 960, "validation": 300, "test": 240}
    plain = replace(simulated_verdict(random.Random(7), effect=0.0, n_seeds=3), statement="No evidence.")
    fair = verdict.qualify(plain, scope, [])
    assert fair.statement == ("No evidence. Scope: gradient-descent dendrites (open perforatedai 3.2.9), not "
                              "Perforated Backpropagation; data: built-in keywords; splits: train 960, validation "
                              "300, test 240 samples.")
    assert fair.warning is None and fair.search_differences == [] and fair.scope == scope
    unfair = verdict.qualify(plain, scope, ["run_cap: 4 vs 6"])
    assert unfair.statement.endswith("Warning: the two sweeps did not get the same search, so this is not an "
                                        "equal-effort comparison: run_cap: 4 vs 6.")


def test_two_sides_on_different_data_are_flagged() -> None:
    records = [TrialRecord(status="finished", data=DataInfo(digest=digest)) for digest in ("a", "b")]
    found = verdict.qualify(simulated_verdict(random.Random(7), effect=0.0, n_seeds=3), verdict.scope(records), [])
    assert found.search_differences == ["the two sides trained on different data"]
    assert verdict.scope(records).dendrites == "dendrites as the sweeps' program implements them"


def test_a_dendritic_pick_whose_models_kept_no_dendrite_says_so() -> None:
    rng = random.Random(9)
    dendritic, baseline = families(rng)
    candidates = verdict.plan(dendritic, baseline, 1, 0.5)
    simulate = Replicates(rng, 0.0)

    def without_dendrites(cs: Sequence[verdict.Candidate], seeds: Sequence[int]) -> dict[str, TrialRecord]:
        return {key: replace(record, dendrites_added=0) for key, record in simulate(cs, seeds).items()}

    estimates, measured_, _ = verdict.evaluate(candidates, without_dendrites, 3, 3, maximize=True)
    found = verdict.decide(estimates, measured_, 3, 0.5)
    assert ("the dendritic config's replicates kept a median of 0 dendrites: PAI removes a dendrite that does not "
            "improve validation") in found.statement
    assert found.dendritic.dendrites_added == 0


def test_the_power_sentence_plans_for_the_declared_effect_and_never_promises_the_impossible() -> None:
    found = simulated_verdict(random.Random(7), effect=0.0, n_seeds=3).estimate
    planned = replace(found, min_effect=0.1, detectable_error_reduction=0.35, seeds_to_resolve=40)
    assert verdict.power_sentence(planned) == ("at these seeds a difference is found (80% power) from an error "
                                               "reduction of about 35%; a 10% error reduction (the declared effect) "
                                               "needs about 40 seeds per config")
    hopeless = replace(found, min_effect=0.1, detectable_error_reduction=1.4, seeds_to_resolve=None)
    assert verdict.power_sentence(hopeless) == ("at these seeds not even removing every error would be found "
                                                "reliably; no number of seeds finds a 10% error reduction on this "
                                                "test split: its own noise is too large")


def test_a_resampled_split_gives_each_replicate_its_own_split_and_covers_the_task() -> None:
    dendritic, baseline = families(random.Random(10))
    candidates = verdict.plan(dendritic, baseline, 1, 0.5)
    runs = verdict.replicates(candidates, verdict.seeds(2), "dend-verdict", resample_split=True)
    assert all(r.params["data_seed"] == r.params["seed"] for r in runs)
    d = measured(verdict.DENDRITIC, 10, [0.91, 0.93, 0.92])
    b = measured(verdict.BASELINE, 10, [0.90, 0.91, 0.92])
    assert verdict.compare(d, b).population == "split"  # one split, no per-example outcomes
    assert verdict.compare(d, b, verdict.Rules(resample_split=True)).population == "task"


def test_front_members_are_replicated_and_verdict_json_draws_each_familys_front_as_a_curve() -> None:
    from analysis.rank import pareto_front

    rng = random.Random(7)
    dendritic, baseline = families(rng)
    candidates = verdict.plan(dendritic, baseline, 1, within_pp=0.5, front=3)
    for family in (dendritic, baseline):
        front = pareto_front(family.df, "params").set_index("run_id")
        mine = [c for c in candidates if c.family == family.name and c.front_cost is not None]
        assert 1 <= len(mine) <= 3 and {c.run_id for c in mine} <= set(front.index)
        assert all(c.front_cost == ("params", float(front.loc[c.run_id, "params"])) for c in mine)
    estimates, measured, _ = verdict.evaluate(candidates, Replicates(rng, 0.0), 3, 3, maximize=True)
    found = verdict.decide(estimates, measured, 3, 0.5)
    curves = found.fronts
    assert set(curves) == {verdict.DENDRITIC, verdict.BASELINE}
    from analysis.report import verdict_section

    text = " ".join(verdict_section(found).text)
    assert "The dendritic Pareto front, re-trained (params: test accuracy, 95% CI): " in text
    for curve in curves.values():
        assert [p.cost for p in curve] == sorted(p.cost for p in curve)
        for p in curve:
            assert p.n == 3 and p.test_acc_ci is not None and p.test_acc_mean is not None
            assert p.test_acc_ci[0] <= p.test_acc_mean <= p.test_acc_ci[1]


def test_one_sweep_that_switches_dendrites_is_split_into_the_two_families_by_each_trials_setting() -> None:
    from analysis.cli import _families
    from analysis.load import Trials
    from dendrisweep.errors import UsageError

    rng = random.Random(3)
    both = pd.concat([sweep_frame(True, rng), sweep_frame(False, rng)], ignore_index=True)
    spec = noisy_spec("pareto", True)
    dendritic, baseline = _families(Trials("pareto", both, "acc", True, spec), None, None)
    assert (dendritic.name, baseline.name) == (verdict.DENDRITIC, verdict.BASELINE)
    assert dendritic.df["dendrites"].tolist() == [True] * 6 and baseline.df["dendrites"].tolist() == [False] * 6
    assert dendritic.spec is baseline.spec is spec  # one sweep re-runs both: the same search by construction
    with pytest.raises(UsageError, match="verdict needs a baseline sweep: .* or one sweep whose finished trials have "
                                         "dendrites on and off"):
        _families(Trials("dend", sweep_frame(True, rng), "acc", True, spec), None, None)
