"""Replicates: chosen configs re-run with fresh seeds, through the agent's own claim -> launch -> record loop.

A replicate study sits beside the sweep's study in the same storage (so agents on many machines can
share the work through PostgreSQL). Each replicate is a queued trial carrying its whole job in its user
attributes (`job` key, parameters, family, W&B group); workers claim them under the budget lock, run
them exactly as sweep trials run, and record them the same way. Asking again for replicates already
settled runs nothing: a killed verdict resumes where it stopped, and asking for more seeds runs only
the new ones. Replicates are not sweep runs: no WANDB_SWEEP_ID, one W&B group per config.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from optuna.trial import FrozenTrial, Trial

from dendrisweep.sweep.controller import DONE, WAIT, AgentOptions, Controller, Job, Tally, is_settled
from dendrisweep.sweep.spec import SweepSpec


@dataclass(frozen=True)
class Replicate:
    """One run to make: a config of one family (its sweep) with one seed."""

    key: str  # unique in the study, stable across invocations: "<family>-<sweep run id>-seed<S>"
    family: str  # which sweep the config comes from (its command and program launch it)
    group: str  # the W&B group: every seed of one config
    params: dict[str, Any]


class ReplicateController(Controller):
    """An agent whose trials are the given replicates instead of a sampler's suggestions."""

    def __init__(self, opts: AgentOptions, specs: Mapping[str, SweepSpec], replicates: Sequence[Replicate]) -> None:
        self.replicates = {r.key: r for r in replicates}
        self.specs = dict(specs)
        # The replicate study keeps the sweep's metric (the objective) but nothing that stops a run early.
        # Quick failures are expected here (a seed that crashes fails at once, on every config): only
        # failures outnumbering successes stop it.
        spec = replace(opts.spec, hyperband=None, target=None, run_cap=None)
        super().__init__(replace(opts, spec=spec, sampler="random", flapping_window=0))

    def _by_job(self) -> dict[str, list[FrozenTrial]]:
        trials: dict[str, list[FrozenTrial]] = {}
        for trial in self.study.get_trials(deepcopy=False):
            trials.setdefault(trial.user_attrs.get("job", ""), []).append(trial)
        return trials

    def _next(self, t: Tally) -> Trial | str:
        if t.waiting:  # a replicate whose worker was lost or interrupted, queued again
            return self.study.ask()
        # A replicate with any trial is under way or over: one lost or interrupted was queued again
        # (above), one whose retries ran out stays failed, as a sweep trial would.
        by_job = self._by_job()
        pending = [key for key in self.replicates if key not in by_job]
        if not pending:
            return WAIT if t.running else DONE
        r = self.replicates[pending[0]]
        self.study.enqueue_trial({}, user_attrs={"job": r.key, "family": r.family, "group": r.group,
                                                 "job_params": r.params})
        return self.study.ask()

    def _job(self, trial: Trial) -> Job:
        attrs = trial.user_attrs
        return Job(self.specs[attrs["family"]], dict(attrs["job_params"]), attrs["group"], in_sweep=False)

    def _progress(self, t: Tally) -> tuple[int, int | None]:
        by_job = self._by_job()
        return sum(any(is_settled(trial) for trial in by_job.get(key, [])) for key in self.replicates), len(
            self.replicates)

    def _label(self, trial: FrozenTrial) -> str:
        return str(trial.user_attrs.get("job", trial.number))


def settled_replicates(trials: Sequence[FrozenTrial], keys: Sequence[str]) -> dict[str, FrozenTrial]:
    """Per replicate key, its settled trial (the last one, if a lost run was re-run)."""
    wanted, found = set(keys), {}
    for trial in trials:
        key = trial.user_attrs.get("job")
        if key in wanted and is_settled(trial):
            found[key] = trial
    return found
