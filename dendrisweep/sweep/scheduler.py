"""`method: custom` sweeps (W&B's multi-objective form, wandb/sweeps #135): searched offline by W&B's own
client-side Optuna scheduler code (wandb 0.31 `wandb/sdk/sweeps/scheduler/optuna.py`), so a config means here
exactly what it means under `wandb sweep`:
- `scheduler.optimizer`: a function in `scheduler.source` that takes W&B's SweepInfo and returns an Optuna study,
  or (study, terminator); W&B checks its directions and metric names against the sweep's `metrics:`;
- `scheduler.search_space`: a define-by-run function of an Optuna trial that returns the run's config;
  without it, the `parameters` block mapped to Optuna distributions by W&B's own mapping.
What differs, and why: the study is made again on the agent's storage (SQLite, PostgreSQL, the gRPC proxy)
with the factory's directions, sampler and pruner, so any number of agents share it and a sweep resumes; a
`metrics:` sweep without an `optimizer` gets our default multi-objective sampler (samplers.py) where W&B takes
Optuna's default.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from dendrisweep.errors import UsageError
from dendrisweep.settings import lookup
from dendrisweep.sweep.spec import SweepSpec


def sweep_info(spec: SweepSpec, study_name: str, project: str) -> Any:
    """W&B's SweepInfo for an offline sweep: the study's name is its id (as every offline run records it)."""
    from wandb.sdk.sweeps.sweep_info import SweepInfo

    return SweepInfo(id=study_name, name=spec.name, entity="", project=project, config=spec.raw,
                     controller_run_name="")


def wandb_optimizer(spec: SweepSpec, study_name: str, project: str) -> Any:
    """W&B's OptunaOptimizer for the sweep (its own loading, mapping and checks); any error it raises about the
    user's file or the config is one line."""
    import wandb
    from wandb.sdk.sweeps.scheduler.optuna import OptunaImperativeOptimizer, build_optuna_optimizer

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # W&B's throwaway in-memory study announces itself
    try:
        optimizer = build_optuna_optimizer(sweep_info(spec, study_name, project))
    except (wandb.Error, ValueError, TypeError) as exc:
        raise UsageError(f"{spec.path}: scheduler: {exc}") from None
    finally:
        optuna.logging.set_verbosity(verbosity)
    if spec.ours and isinstance(optimizer, OptunaImperativeOptimizer):
        _check_suggested(spec, optimizer.trial_constructor)
    return optimizer


def _check_suggested(spec: SweepSpec, constructor: Any) -> None:
    """Our program: what a define-by-run search space suggests must be registry settings it accepts (checked
    on one throwaway trial, as W&B checks the function's return type)."""
    trial = optuna.create_study(storage=optuna.storages.InMemoryStorage()).ask()
    for name, value in constructor(trial).items():
        try:
            lookup(name).coerce(value)
        except UsageError as exc:
            raise UsageError(f"{spec.path}: scheduler.search_space suggests {name}={value!r}: {exc}") from None


def take_suggestion(optimizer: Any) -> tuple[optuna.trial.Trial, dict[str, Any]] | None:
    """The next trial W&B's optimizer asks its study for, with the config it proposes (flat, as W&B's agent
    delivers it); None when the search is exhausted (a spent grid) or its terminator says the sweep is done."""
    if optimizer.should_terminate_sweep():
        return None
    suggestions = optimizer.ask_n_runs(1)
    if not suggestions:
        return None
    (suggestion,) = suggestions
    # the agent tells the study itself (the trial's record settles it): W&B's live handle is not kept
    return optimizer.trials.pop(suggestion.run_id), suggestion.config.flat_dict()


def delivered(spec: SweepSpec, config: Mapping[str, Any]) -> dict[str, Any]:
    """A suggested config as the program receives it: our program's values in the registry's types."""
    if not spec.ours:
        return dict(config)
    return {name: lookup(name).coerce(value) for name, value in config.items()}
