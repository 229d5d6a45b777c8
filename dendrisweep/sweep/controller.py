"""Run trials offline: a source hands out claims, each becomes a process, each ends as a stored record.

Any number of agents (on one machine with --workers, or many machines sharing a PostgreSQL study)
run this same loop; they coordinate only through the database:

    claim   -> under the budget lock: mark lost trials, count, then ask the source for the next claim
    launch  -> run the claim's job exactly as `wandb agent` would, report per-step values for pruning
    record  -> settle (settle.py), store the trial's record whole, tell Optuna how it ended

The source decides what runs (`SweepSource`: what the sampler suggests, within the sweep's budget;
the verdict's replicate source: given configs with given seeds); the launcher how (`AgentOptions.launcher`,
the port in launcher.py: by default a `LocalLauncher`, processes on this machine; tests pass one that starts
nothing). Nothing already recorded is rewritten.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState
from tqdm import tqdm

from dendrisweep.contract import FINAL_FAILURES, PREEMPTION_NOTICE, Status, TrialRecord, is_number, new_run_id
from dendrisweep.errors import UsageError
from dendrisweep.sweep import optuna_adapter as adapter
from dendrisweep.sweep.launch import Job, LocalLauncher, TrialFiles
from dendrisweep.sweep.launcher import Launcher
from dendrisweep.sweep.pruners import WandbHyperband
from dendrisweep.sweep.samplers import make_sampler
from dendrisweep.sweep.scheduler import delivered, take_suggestion, wandb_optimizer
from dendrisweep.sweep.settle import Objective, Observed, Tell, settle
from dendrisweep.sweep.space import grid_size, search_space, trial_params, trial_values
from dendrisweep.sweep.spec import SweepSpec
from dendrisweep.sweep.storage import (
    RECORD_ATTR,
    exclusive,
    fail_lost_trials,
    open_storage,
    quiet_optuna,
    redact,
    stored_record,
    stored_status,
)

WAIT_SECONDS = 2.0
DUPLICATE_TRIES = 10  # suggestions in a row that repeat a measured config before one is run anyway
FLAPPING_RUNS, FLAPPING_WINDOW = 3, 60  # wandb agent's: 3 failed runs in its first 60 s stop it


class Pause(Enum):
    """No claim now: WAIT (others' trials may free budget or fail) or DONE (nothing left for this agent)."""

    WAIT = "wait"
    DONE = "done"


@dataclass(frozen=True)
class Claim:
    """A study trial this worker now owns, and the job it runs."""

    trial: Trial
    job: Job


class Source(Protocol):
    """What an agent runs. Called under the budget lock, so counting and claiming are one step."""

    def next(self, study: optuna.Study, tally: Tally) -> Claim | Pause: ...

    def progress(self, study: optuna.Study, tally: Tally) -> tuple[int, int | None]:
        """(done, in all) for the progress bar."""

    def label(self, trial: FrozenTrial) -> str:
        """A trial in a few words, for the progress bar."""

    def template(self) -> optuna.Study | None:
        """A study whose directions, sampler and pruner the agent's study takes (a `scheduler.optimizer`'s)."""


@dataclass(frozen=True)
class AgentOptions:
    spec: SweepSpec  # the study's sweep: its metric, direction, pruning, sampler
    study_name: str
    storage_url: str
    run_dir: Path
    workers: int = 1
    gpus: tuple[str, ...] = ()  # the default launcher's: worker i trains on gpus[i % len(gpus)]
    count: int | None = None
    sampler: str | None = None
    timeout: float | None = None
    heartbeat: int = 20
    progress: bool = True
    flapping_guard: bool = True  # stop, as `wandb agent` does, when runs keep failing from the start
    max_initial_failures: int = 5
    flapping_window: float = FLAPPING_WINDOW  # seconds in which FLAPPING_RUNS failed runs stop the agent
    project: str | None = None  # --project: the W&B project of the runs when the YAML names none
    launcher: Launcher | None = None  # how trials run; by default LocalLauncher(workers, gpus) on this machine

    @property
    def wandb_project(self) -> str:
        """Where the runs go: the YAML's project, else --project, else the study's name."""
        return self.spec.project or self.project or self.study_name

    @property
    def objective(self) -> Objective:
        return Objective(self.spec.metric, self.spec.maximize, self.spec.impute,
                         tuple(name for name, _ in self.spec.objectives[1:]))


@dataclass
class Tally:
    settled: int = 0
    running: int = 0
    waiting: int = 0
    finished: int = 0
    failed: int = 0
    pruned: int = 0
    best: FrozenTrial | None = None  # single-objective studies
    best_value: float = math.nan
    front: int = 0  # multi-objective studies: trials on the Pareto front


def is_settled(trial: FrozenTrial) -> bool:
    """Counts towards the budget: finished, pruned, or a final failure (not a lost worker)."""
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and stored_status(trial) in FINAL_FAILURES)


def better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


def tally(study: optuna.Study) -> Tally:
    t = Tally()
    single = len(study.directions) == 1
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    for trial in study.get_trials(deepcopy=False):
        t.settled += is_settled(trial)
        t.running += trial.state == TrialState.RUNNING
        t.waiting += trial.state == TrialState.WAITING
        t.finished += trial.state == TrialState.COMPLETE
        t.pruned += trial.state == TrialState.PRUNED
        t.failed += trial.state == TrialState.FAIL
        if single and trial.state == TrialState.COMPLETE and trial.value is not None and (
                t.best is None or better(trial.value, t.best_value, maximize)):
            t.best, t.best_value = trial, trial.value
    if not single and t.finished:
        t.front = len(study.best_trials)
    return t


def open_study(opts: AgentOptions, template: optuna.Study | None = None) -> optuna.Study:
    """Create the study, or resume it if it was made from the same sweep config. `template`: the study a
    `scheduler.optimizer` built, whose directions, sampler and pruner the stored study takes."""
    quiet_optuna()
    spec = opts.spec
    directions = [optuna.study.StudyDirection.MAXIMIZE if goal == "maximize" else optuna.study.StudyDirection.MINIMIZE
                  for _, goal in spec.objectives] or [optuna.study.StudyDirection.MINIMIZE]
    sampler = template.sampler if template is not None else make_sampler(opts.sampler, spec)
    pruner = (WandbHyperband(spec) if spec.hyperband else template.pruner if template is not None
              else optuna.pruners.NopPruner())
    storage = open_storage(opts.storage_url)
    try:
        study = optuna.create_study(storage=storage, study_name=opts.study_name, load_if_exists=True,
                                    directions=directions, sampler=sampler, pruner=pruner)
    except ValueError as exc:  # an existing study with another direction
        raise UsageError(f"study {opts.study_name}: {exc}") from None
    names = [name for name, _ in spec.objectives]
    if names and study.metric_names != names:  # optuna-dashboard labels the objectives by them
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    stored = study.user_attrs.get("sweep")
    if stored is not None and _search(stored) != _search(spec.raw):
        raise UsageError(f"study {opts.study_name} in {redact(opts.storage_url)} was created from a sweep with "
                         f"other parameters or metric; use --study NEW_NAME (or the original YAML) to keep both")
    if stored != spec.raw:  # same search; run_cap or command may have changed
        study.set_user_attr("sweep", spec.raw)
        study.set_user_attr("sweep_file", str(spec.path))
    return study


def _search(raw: dict[str, Any]) -> tuple[Any, ...]:
    """The parts of a sweep config that define its search (a study must not mix two searches)."""
    return (raw.get("method"), raw.get("metric"), raw.get("metrics"), raw.get("scheduler"), raw.get("parameters"))


def budget(spec: SweepSpec, sampler: str | None) -> int | None:
    """run_cap, or every point of a grid, or unbounded (until --count or Ctrl-C)."""
    if spec.run_cap is not None:
        return spec.run_cap
    if (sampler or spec.method) == "grid":
        return grid_size(spec)
    return None


class SweepSource:
    """A sweep's trials: what the sampler suggests, within the sweep's budget, until its target. A `method:
    custom` sweep's suggestions come from W&B's own Optuna scheduler code (scheduler.py)."""

    def __init__(self, opts: AgentOptions) -> None:
        # --sampler grid on another method searches that sweep's grid, as `method: grid` would
        self.spec = replace(opts.spec, method="grid") if opts.sampler == "grid" else opts.spec
        self.group, self.project = opts.study_name, opts.wandb_project
        self.budget = budget(self.spec, opts.sampler)
        custom = self.spec.method == "custom"
        self.space = {} if custom else search_space(self.spec)
        self.optimizer = wandb_optimizer(self.spec, self.group, self.project) if custom else None
        self.duplicates = 0  # told without running: repeats of a measured config

    def template(self) -> optuna.Study | None:
        scheduler = self.spec.scheduler
        if self.optimizer is None or scheduler is None or scheduler.optimizer is None:
            return None
        return self.optimizer.study

    def next(self, study: optuna.Study, t: Tally) -> Claim | Pause:
        pause = self._pause(t)
        if pause is not None:
            return pause
        if self.optimizer is not None:
            return self._scheduled(study)
        trial = study.ask(self.space)
        return Claim(trial, Job.of(self.spec, trial_params(self.spec, trial.params), self.group, self.project))

    def _pause(self, t: Tally) -> Pause | None:
        """DONE at the metric's target or the spent budget; WAIT while running trials may still free it."""
        target = self.spec.target
        if target is not None and t.best is not None and (
                t.best_value == target or better(t.best_value, target, self.spec.maximize)):
            return Pause.DONE
        if self.budget is not None:
            if t.settled >= self.budget:
                return Pause.DONE
            if t.settled + t.running + t.waiting >= self.budget and t.waiting == 0:
                return Pause.WAIT
        return None

    def _scheduled(self, study: optuna.Study) -> Claim | Pause:
        """W&B's optimizer's next suggestion. One that repeats a finished trial's config (a sampler on a small
        discrete space proposes them) is told that trial's values and recorded as a duplicate instead of
        training again; it counts against the budget, as the trial it repeats did. After DUPLICATE_TRIES
        repeats in a row, the next suggestion runs whatever it is."""
        assert self.optimizer is not None
        self.optimizer.study = study  # W&B's optimizer asks the agents' shared study
        for repeats in range(DUPLICATE_TRIES + 1):
            taken = take_suggestion(self.optimizer)
            if taken is None:
                return Pause.DONE
            trial, config = taken
            earlier = next((e for e in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                            if e.params == trial.params), None)
            if earlier is None or repeats == DUPLICATE_TRIES:
                return Claim(trial, Job.of(self.spec, delivered(self.spec, config), self.group, self.project))
            repeated = stored_record(earlier) or TrialRecord(status=Status.FINISHED)
            trial.set_user_attr(RECORD_ATTR, replace(  # no run or folder of its own: those are the earlier trial's
                repeated, run_id=None, trial_dir=None,
                reason=f"duplicate of trial {earlier.number}: its values told, not trained again").to_json())
            study.tell(trial, earlier.values)
            self.duplicates += 1
            pause = self._pause(tally(study))
            if pause is not None:
                return pause
        raise AssertionError("unreachable: the last try returns its claim")

    def progress(self, study: optuna.Study, t: Tally) -> tuple[int, int | None]:
        return t.settled, self.budget

    def label(self, trial: FrozenTrial) -> str:
        """The searched parameters in a few words, as delivered (not Optuna's quantiles)."""
        fixed = self.spec.fixed()
        values: dict[tuple[str, ...], Any]
        if self.optimizer is not None:  # W&B's own mapping: the values are the parameters
            values = {(k,): v for k, v in trial.params.items() if (k,) not in fixed}
        else:
            values = {k: v for k, v in trial_values(self.spec, trial.params).items() if k not in fixed}
        return ", ".join(f"{'.'.join(k)}={_short(v)}" for k, v in list(values.items())[:3])


def flapping(failures: list[float], successes: int, window: float, max_initial_failures: int) -> str | None:
    """`wandb agent`'s guard against a broken script, given when this agent's runs failed (seconds after
    its start) and how many finished: 3 failed runs in the first `window` seconds, or failures reaching
    `max_initial_failures` and outnumbering successes. Returns why it stops, or None."""
    early = sum(seconds <= window for seconds in failures)
    if early >= FLAPPING_RUNS:
        return f"{early} runs failed in the first {window:g} s"
    if len(failures) >= max_initial_failures and len(failures) > successes:
        return f"{len(failures)} runs failed and only {successes} finished"
    return None


class Controller:
    """One agent: `workers` threads, each claiming from `source`, launching with `launcher` and recording."""

    def __init__(self, opts: AgentOptions, source: Source) -> None:
        self.opts, self.source = opts, source
        # by default its trials share a W&B service if they run train_trial.py, which finishes its own runs
        self.launcher: Launcher = (opts.launcher if opts.launcher is not None else
                                   LocalLauncher(opts.workers, opts.gpus, share_wandb=opts.spec.ours))
        self.study: optuna.Study | None = None  # opened by open(), or run()
        self.stop = threading.Event()
        self.draining = threading.Event()  # a preemption notice: claim nothing more, let running trials end
        self.launched = 0
        self.started = time.monotonic()
        self.failures: list[float] = []  # when this agent's runs failed (seconds after its start)
        self.successes = 0
        self.flapping: str | None = None  # why the flapping guard stopped the agent
        self.broken: str | None = None  # why a worker stopped on an error of the sweep's own code (its sampler)
        self.running: dict[int, int] = {}  # worker -> the trial it runs
        self._lock = threading.Lock()
        self._ended = threading.Condition()  # notified when one of this agent's trials ends
        self.bar: tqdm | None = None

    def open(self) -> optuna.Study:
        if self.study is None:
            self.study = open_study(self.opts, self.source.template())
        return self.study

    # -- claim ------------------------------------------------------------------------------
    def _claim(self, study: optuna.Study) -> Claim | Pause:
        with exclusive(self.opts.storage_url, self.opts.study_name, adapter.study_storage(study)):  # budget lock
            # Under the lock: two workers finding the same lost trial at once would both queue it again
            # (SQLite cannot lock the row it checks), and its parameters would run twice.
            fail_lost_trials(study, 3 * self.opts.heartbeat)
            if self.stop.is_set() or self.draining.is_set() or \
                    (self.opts.count is not None and self.launched >= self.opts.count):
                return Pause.DONE
            claim = self.source.next(study, tally(study))
            if isinstance(claim, Claim):
                self.launched += 1
            return claim

    # -- launch -----------------------------------------------------------------------------
    def _reporter(self, trial: Trial, logged: list[float]) -> Callable[[dict[str, Any]], bool]:
        """Hands each logged value of the metric to the pruner; its step is how many times the metric
        has been logged (W&B's hyperband counts iterations so; for train_trial.py it is the epoch)."""
        metric, prunes = self.opts.spec.metric, self.opts.spec.hyperband is not None
        reports = not self.opts.spec.multi_objective  # Optuna's pruners judge a single objective only

        def report(row: dict[str, Any]) -> bool:
            value = row.get(metric) if metric is not None else None
            if not is_number(value):
                return False
            logged.append(float(value))
            if reports:
                trial.report(float(value), step=len(logged))
            return prunes and trial.should_prune()

        return report

    def _launch(self, claim: Claim, worker: int, logged: list[float]) -> tuple[TrialRecord, Observed]:
        files = TrialFiles(self.opts.run_dir.resolve(), self.opts.study_name, new_run_id())
        # On the trial before it runs: its folder and run id, for the audit and for whoever finds it lost.
        started = TrialRecord(run_id=files.run_id, trial_dir=str(files.trial_dir), config=claim.job.params)
        claim.trial.set_user_attr(RECORD_ATTR, started.to_json())
        observed = self.launcher.launch(claim.job, files, worker=worker, on_row=self._reporter(claim.trial, logged),
                                        stop=self.stop, timeout=self.opts.timeout)
        return started, observed

    # -- record -----------------------------------------------------------------------------
    def _record(self, study: optuna.Study, trial: Trial, started: TrialRecord, observed: Observed,
                logged: list[float]) -> None:
        settled = settle(started, observed, self.opts.objective, logged)
        trial.set_user_attr(RECORD_ATTR, settled.record.to_json())
        self._watch_flapping(settled.record.status)
        if settled.tell == Tell.COMPLETE:
            study.tell(trial, settled.values or settled.value)
        elif settled.tell == Tell.PRUNED:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            frozen = study.tell(trial, state=TrialState.FAIL)
            if settled.retry:
                adapter.retry(study, frozen)

    def _watch_flapping(self, status: str) -> None:
        with self._lock:
            if status != Status.FAILED:
                self.successes += status == Status.FINISHED
                return
            self.failures.append(time.monotonic() - self.started)
            if not self.opts.flapping_guard or self.flapping is not None:
                return
            self.flapping = flapping(self.failures, self.successes, self.opts.flapping_window,
                                     self.opts.max_initial_failures)
            if self.flapping is not None:
                self.stop.set()

    # -- loop -------------------------------------------------------------------------------
    @contextmanager
    def _running(self, study: optuna.Study, worker: int, claim: Claim) -> Iterator[None]:
        """Heartbeats while the claim runs, and this agent's bookkeeping of who runs what."""
        beat = adapter.Heartbeat(adapter.study_storage(study), adapter.trial_id(claim.trial), self.opts.heartbeat)
        with self._lock:  # _refresh reads it from other workers' threads
            self.running[worker] = claim.trial.number
        try:
            yield
        finally:
            beat.stop()
            with self._lock:
                self.running.pop(worker, None)
            with self._ended:
                self._ended.notify_all()

    def _worker(self, worker: int, study: optuna.Study) -> None:
        while not self.stop.is_set():
            claim = self._claim(study)
            if claim is Pause.DONE:
                return
            if claim is Pause.WAIT:
                with self._ended:  # until a trial here ends (or a while, for other agents' trials)
                    self._ended.wait(WAIT_SECONDS)
                continue
            assert isinstance(claim, Claim)
            logged: list[float] = []
            trial_dir = "its trial folder"
            try:
                with self._running(study, worker, claim):
                    started, observed = self._launch(claim, worker, logged)
                    trial_dir = str(started.trial_dir)
                    self._record(study, claim.trial, started, observed, logged)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Its heartbeat went silent too long (a paused or overloaded machine): another agent
                # marked it lost and queued its parameters again. Its own files keep the result.
                tqdm.write(f"agent.py: warning: trial {claim.trial.number} was marked lost by another agent while "
                           f"it ran (heartbeat missed); its parameters run again, its result stays in "
                           f"{trial_dir}", file=sys.stderr)
            except Exception as exc:  # noqa: BLE001  a sampler's (a scheduler.optimizer's) own code failed
                # Optuna stores the trial's end before its sampler's after_trial runs, so the record is kept;
                # the agent stops with one line rather than losing a worker thread silently.
                self.broken = f"trial {claim.trial.number}: {type(exc).__name__}: {exc}"
                self.stop.set()
                return
            self._refresh(study)

    def _refresh(self, study: optuna.Study) -> None:
        if self.bar is None:
            return
        with self._lock:
            t = tally(study)
            self.bar.n, self.bar.total = self.source.progress(study, t)
            postfix = f"done {t.finished} failed {t.failed} pruned {t.pruned}"
            if t.best is not None and self.opts.spec.metric is not None:
                postfix += f" | best {t.best_value:.4f} ({self.source.label(t.best)})"
            if self.opts.spec.multi_objective:
                postfix += f" | Pareto front {t.front}"
            placed = [(self.launcher.where(w), n) for w, n in sorted(self.running.items())]
            if any(where for where, _ in placed):  # which worker runs what where
                postfix += " | " + " ".join(f"{where}:#{n}" for where, n in placed)
            self.bar.set_postfix_str(postfix, refresh=True)

    def _drain(self, signum: int, frame: Any) -> None:
        """Slurm's preemption notice (SIGUSR1, to the whole job): the running trials got it too and record
        themselves preempted (their parameters run again when the job is requeued); claim nothing more."""
        self.draining.set()
        tqdm.write("agent.py: preemption notice (SIGUSR1): starting no new trial; the running ones record "
                   "themselves preempted and run again when the job is requeued", file=sys.stderr)

    def run(self) -> Tally:
        """Run until the source is done, --count is reached or the flapping guard stops it; Ctrl-C stops
        cleanly (running trials are recorded as interrupted and run again on resume)."""
        study = self.open()
        done, total = self.source.progress(study, tally(study))
        self.bar = tqdm(total=total, initial=done, desc=self.opts.study_name, unit="trial",
                        disable=not self.opts.progress, dynamic_ncols=True)
        workers = [threading.Thread(target=self._worker, args=(i, study), name=f"worker-{i}")
                   for i in range(self.opts.workers)]
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, signal.default_int_handler),
                    PREEMPTION_NOTICE: signal.signal(PREEMPTION_NOTICE, self._drain)}
        try:
            with self.launcher.session():  # held until every worker is done: their trials use it to the end
                _run_all(workers, self.stop)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._refresh(study)
            self.bar.close()
        if self.broken is not None:
            raise UsageError(f"study {self.opts.study_name}: the sweep's sampler failed after {self.broken} (the "
                             "trial's record is kept)")
        return tally(study)


def _run_all(workers: list[threading.Thread], stop: threading.Event) -> None:
    """Start the workers and wait for them; on Ctrl-C, stop them and wait until their trials are recorded."""
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        for worker in workers:
            worker.join()
        raise


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
