"""Replicates: chosen configs re-run with fresh seeds, through the agent's own claim -> launch -> record loop.

A replicate study sits beside the sweep's study in the same storage (so agents on many machines can
share the work through PostgreSQL). Each replicate is a queued trial carrying its whole job in one user
attribute (`job`: key, family, W&B group, parameters); workers claim them under the budget lock, run
them exactly as sweep trials run, and record them the same way. Asking again for replicates already
settled runs nothing: a killed verdict resumes where it stopped, and asking for more seeds runs only
the new ones. Replicates go to the dendritic sweep's W&B project, one W&B group per config.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from dendrisweep.contract import TrialRecord
from dendrisweep.sweep.controller import AgentOptions, Claim, Controller, Pause, Tally, is_settled
from dendrisweep.sweep.launch import Job
from dendrisweep.sweep.spec import SweepSpec
from dendrisweep.sweep.storage import stored_record

JOB_ATTR = "job"  # trial user attribute: the Replicate it runs


@dataclass(frozen=True)
class Replicate:
    """One run to make: a config of one family (its sweep) with one seed."""

    key: str  # unique in the study, stable across invocations: "<family>-<sweep run id>-seed<S>"
    family: str  # which sweep the config comes from (its command and program launch it)
    group: str  # the W&B group: every seed of one config
    params: dict[str, Any]


def _job_key(trial: FrozenTrial) -> str | None:
    job = trial.user_attrs.get(JOB_ATTR)
    return job.get("key") if isinstance(job, dict) else None


class ReplicateSource:
    """Claims the given replicates, each once: the pending ones in order, then any queued again."""

    def __init__(self, specs: Mapping[str, SweepSpec], replicates: Sequence[Replicate], project: str) -> None:
        self.specs, self.project = dict(specs), project
        self.replicates = {r.key: r for r in replicates}

    def _by_key(self, study: optuna.Study) -> dict[str, list[FrozenTrial]]:
        found: dict[str, list[FrozenTrial]] = {}
        for trial in study.get_trials(deepcopy=False):
            found.setdefault(_job_key(trial) or "", []).append(trial)
        return found

    def next(self, study: optuna.Study, t: Tally) -> Claim | Pause:
        if not t.waiting:
            # A replicate with any trial is under way or over: one lost or interrupted was queued again
            # (it is WAITING), one whose retries ran out stays failed, as a sweep trial would.
            by_key = self._by_key(study)
            pending = [key for key in self.replicates if key not in by_key]
            if not pending:
                return Pause.WAIT if t.running else Pause.DONE
            study.enqueue_trial({}, user_attrs={JOB_ATTR: asdict(self.replicates[pending[0]])})
        trial = study.ask()
        job = Replicate(**trial.user_attrs[JOB_ATTR])
        return Claim(trial, Job.of(self.specs[job.family], dict(job.params), job.group, self.project))

    def progress(self, study: optuna.Study, t: Tally) -> tuple[int, int | None]:
        by_key = self._by_key(study)
        done = sum(any(is_settled(trial) for trial in by_key.get(key, [])) for key in self.replicates)
        return done, len(self.replicates)

    def label(self, trial: FrozenTrial) -> str:
        return _job_key(trial) or str(trial.number)

    def template(self) -> optuna.Study | None:
        return None


def replicate_options(opts: AgentOptions) -> AgentOptions:
    """The replicate study keeps the sweep's metric (the objective; a multi-objective sweep's first) but nothing
    that stops a run early. Quick failures are expected here (a seed that crashes fails at once, on every
    config): only failures outnumbering successes stop it."""
    spec = replace(opts.spec, hyperband=None, target=None, run_cap=None, objectives=opts.spec.objectives[:1])
    return replace(opts, spec=spec, sampler="random", flapping_window=0)


class ReplicatesFailing(Exception):
    """The flapping guard stopped the replicates; the message says why and where their stderr is."""


def settled_replicates(trials: Sequence[FrozenTrial], keys: Sequence[str]) -> dict[str, TrialRecord]:
    """Per replicate key, the record of its settled trial (the last one, if a lost run was re-run)."""
    wanted, found = set(keys), {}
    for trial in trials:
        key = _job_key(trial)
        record = stored_record(trial)
        if key in wanted and is_settled(trial) and record is not None:
            found[key] = record
    return found


def run_replicates(opts: AgentOptions, specs: Mapping[str, SweepSpec],
                   replicates: Sequence[Replicate]) -> dict[str, TrialRecord]:
    """Run every replicate not yet settled in the study `opts` names (through its launcher, with workers and
    heartbeats as an agent's), then return the settled records by key."""
    controller = Controller(replicate_options(opts), ReplicateSource(specs, replicates, opts.wandb_project))
    controller.run()
    if controller.flapping is not None:
        raise ReplicatesFailing(f"the replicates keep failing ({controller.flapping}); their stderr is in "
                                f"{opts.run_dir / 'logs'}")
    assert controller.study is not None
    return settled_replicates(controller.study.get_trials(deepcopy=False), [r.key for r in replicates])
