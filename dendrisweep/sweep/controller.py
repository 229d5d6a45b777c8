"""Run a sweep offline: Optuna picks parameters, each trial is a train_trial.py process.

Any number of agents (on one machine with --workers, or many machines sharing a PostgreSQL study)
run this same loop; they coordinate only through the database:

    claim   -> (under the budget lock) count settled/running/queued trials, then ask Optuna
    launch  -> run the trial exactly as `wandb agent` would, report per-epoch values for pruning
    record  -> store status, reason, metrics and the stderr tail, then tell Optuna how it ended

Nothing already recorded is rewritten. Trials whose worker died are marked FAIL (`lost`) and
queued again; a trial that crashes, diverges or times out is recorded as such and not retried.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, Trial, TrialState
from tqdm import tqdm

from dendrisweep.contract import FAILED, FINAL_FAILURES, FINISHED, PRUNED, RESULT_METRICS, RETRIED, new_run_id
from dendrisweep.errors import UsageError
from dendrisweep.sweep import optuna_adapter as adapter
from dendrisweep.sweep.launch import Outcome, TrialFiles, launch
from dendrisweep.sweep.pruners import WandbHyperband
from dendrisweep.sweep.samplers import make_sampler
from dendrisweep.sweep.space import grid_size, search_space, trial_params, trial_values
from dendrisweep.sweep.spec import SweepSpec
from dendrisweep.sweep.storage import exclusive, fail_lost_trials, open_storage, quiet_optuna, redact

# Copied from result.json into the study, so the analysis loads everything from the store alone.
RESULT_KEYS = (*RESULT_METRICS, "best_epoch",
               "stop_reason", "wall_seconds", "config", "data")
WAIT_SECONDS = 2.0
FLAPPING_RUNS, FLAPPING_WINDOW = 3, 60  # wandb agent's: 3 failed runs in its first 60 s stop it
WAIT, DONE = "wait", "done"


@dataclass(frozen=True)
class AgentOptions:
    spec: SweepSpec
    study_name: str
    storage_url: str
    run_dir: Path
    workers: int = 1
    gpus: tuple[str, ...] = ()  # worker i trains on gpus[i % len(gpus)] (its CUDA_VISIBLE_DEVICES)
    count: int | None = None
    sampler: str | None = None
    timeout: float | None = None
    heartbeat: int = 20
    progress: bool = True
    flapping_guard: bool = True  # stop, as `wandb agent` does, when runs keep failing from the start
    max_initial_failures: int = 5
    flapping_window: float = FLAPPING_WINDOW  # seconds in which FLAPPING_RUNS failed runs stop the agent


@dataclass(frozen=True)
class Job:
    """What one trial runs: the sweep whose command and program launch it, its parameters, its W&B group,
    and whether it is a run of that sweep (W&B's WANDB_SWEEP_ID) or a run of its own (a replicate)."""

    spec: SweepSpec
    params: dict[str, Any]
    group: str
    in_sweep: bool = True


@dataclass
class Tally:
    settled: int = 0
    running: int = 0
    waiting: int = 0
    finished: int = 0
    failed: int = 0
    pruned: int = 0
    best: FrozenTrial | None = None
    best_value: float = math.nan


def is_settled(trial: FrozenTrial) -> bool:
    """Counts towards the budget: finished, pruned, or a final failure (not a lost worker)."""
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and trial.user_attrs.get("status") in FINAL_FAILURES)


def _better(a: float, b: float, maximize: bool) -> bool:
    return a > b if maximize else a < b


def tally(study: optuna.Study) -> Tally:
    t = Tally()
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    for trial in study.get_trials(deepcopy=False):
        t.settled += is_settled(trial)
        t.running += trial.state == TrialState.RUNNING
        t.waiting += trial.state == TrialState.WAITING
        t.finished += trial.state == TrialState.COMPLETE
        t.pruned += trial.state == TrialState.PRUNED
        t.failed += trial.state == TrialState.FAIL
        if trial.state == TrialState.COMPLETE and trial.value is not None and (
                t.best is None or _better(trial.value, t.best_value, maximize)):
            t.best, t.best_value = trial, trial.value
    return t


def create_or_resume_study(opts: AgentOptions) -> optuna.Study:
    """Create the study, or resume it if it was made from the same sweep config."""
    quiet_optuna()
    spec = opts.spec
    pruner = WandbHyperband(spec) if spec.hyperband else optuna.pruners.NopPruner()
    storage = open_storage(opts.storage_url)
    try:
        study = optuna.create_study(storage=storage, study_name=opts.study_name, load_if_exists=True,
                                    direction="maximize" if spec.maximize else "minimize",
                                    sampler=make_sampler(opts.sampler, spec), pruner=pruner)
    except ValueError as exc:  # an existing study with another direction
        raise UsageError(f"study {opts.study_name}: {exc}") from None
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
    return raw.get("method"), raw.get("metric"), raw.get("parameters")


def budget(spec: SweepSpec, sampler: str | None) -> int | None:
    """run_cap, or every point of a grid, or unbounded (until --count or Ctrl-C)."""
    if spec.run_cap is not None:
        return spec.run_cap
    if (sampler or spec.method) == "grid":
        return grid_size(spec)
    return None


class Controller:
    """One agent: `workers` threads, each claiming, launching and recording trials."""

    def __init__(self, opts: AgentOptions) -> None:
        # --sampler grid on another method searches that sweep's grid, as `method: grid` would
        self.opts, self.spec = opts, replace(opts.spec, method="grid") if opts.sampler == "grid" else opts.spec
        self.study = create_or_resume_study(opts)
        self.space = search_space(self.spec)
        self.budget = budget(self.spec, opts.sampler)
        self.stop = threading.Event()
        self.launched = 0
        self.started = time.monotonic()
        self.failures: list[float] = []  # when this agent's runs failed (seconds after its start)
        self.successes = 0
        self.flapping: str | None = None  # why the flapping guard stopped the agent
        self.logged: dict[int, list[float]] = {}  # per running trial: the metric's values as logged
        self.running: dict[int, int] = {}  # worker -> the trial it runs
        self._lock = threading.Lock()
        self._ended = threading.Condition()  # notified when one of this agent's trials ends
        self.threads = max(1, (os.cpu_count() or 1) // opts.workers)
        done, total = self._progress(tally(self.study))
        self.bar = tqdm(total=total, initial=done, desc=opts.study_name, unit="trial",
                        disable=not opts.progress, dynamic_ncols=True)

    # -- claim ------------------------------------------------------------------------------
    def _claim(self) -> Trial | str:
        with exclusive(self.opts.storage_url, self.opts.study_name, adapter.study_storage(self.study)):  # budget lock
            # Under the lock: two workers finding the same lost trial at once would both queue it again
            # (SQLite cannot lock the row it checks), and its parameters would run twice.
            fail_lost_trials(self.study, 3 * self.opts.heartbeat)
            t = tally(self.study)
            if self.stop.is_set() or (self.opts.count is not None and self.launched >= self.opts.count):
                return DONE
            if self.spec.target is not None and t.best is not None and (
                    t.best_value == self.spec.target or _better(t.best_value, self.spec.target, self.spec.maximize)):
                return DONE
            claim = self._next(t)
            if isinstance(claim, Trial):
                self.launched += 1
            return claim

    def _next(self, t: Tally) -> Trial | str:
        """The sweep's next trial (called under the budget lock): what the sampler suggests, within budget."""
        if self.budget is not None:
            if t.settled >= self.budget:
                return DONE
            if t.settled + t.running + t.waiting >= self.budget and t.waiting == 0:
                return WAIT
        return self.study.ask(self.space)

    # -- launch -----------------------------------------------------------------------------
    def _reporter(self, trial: Trial) -> Callable[[dict[str, Any]], bool]:
        """Hands each logged value of the metric to the pruner; its step is how many times the metric
        has been logged (W&B's hyperband counts iterations so; for train_trial.py it is the epoch)."""
        logged = self.logged[trial.number] = []

        def report(row: dict[str, Any]) -> bool:
            value = row.get(self.spec.metric) if self.spec.metric is not None else None
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                return False
            logged.append(float(value))
            trial.report(float(value), step=len(logged))
            return self.spec.hyperband is not None and trial.should_prune()

        return report

    def _job(self, trial: Trial) -> Job:
        """What a claimed trial runs: the parameters the sampler chose, as a run of this sweep."""
        return Job(self.spec, trial_params(self.spec, trial.params), self.opts.study_name)

    def gpu(self, worker: int) -> str | None:
        """The GPU a worker's trials see (round robin over --gpus), or None."""
        return self.opts.gpus[worker % len(self.opts.gpus)] if self.opts.gpus else None

    def _launch(self, trial: Trial, worker: int) -> Outcome:
        job = self._job(trial)
        gpu = self.gpu(worker)
        files = TrialFiles(self.opts.run_dir.resolve(), self.opts.study_name, new_run_id())
        trial.set_user_attr("run_id", files.run_id)
        trial.set_user_attr("trial_dir", str(files.trial_dir))
        trial.set_user_attr("config", job.params)  # as delivered; train_trial.py's full config replaces it
        return launch(files, job.spec.command, job.spec.program, job.params, group=job.group,
                      project=job.spec.project, threads=self.threads, timeout=self.opts.timeout,
                      share_wandb_service=job.spec.ours, in_sweep=job.in_sweep, on_row=self._reporter(trial),
                      stop=self.stop, env={"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else None)

    # -- record -----------------------------------------------------------------------------
    def _record(self, trial: Trial, outcome: Outcome) -> None:
        # The objective is what the program logged to W&B; a program keeping the trial contract
        # (train_trial.py) logs the same final numbers to result.json, whole the moment it exits.
        # A sweep without a metric (grid, random) records 0 for every finished run.
        metric = self.spec.metric
        source = outcome.result if metric in outcome.result else outcome.summary
        value = source.get(metric) if metric is not None else 0.0
        finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        imputed = self._impute(outcome, self.logged.pop(trial.number, []))
        if imputed is not None:
            value, finite = imputed, True
        elif outcome.status == FINISHED and not finite:
            outcome.status, outcome.reason = FAILED, (f"the run logged no finite {metric} to W&B"
                                                        f"{'' if outcome.logged else ' (no W&B run found)'}")
        # result.json where the program keeps the trial contract, else what it logged to W&B's summary
        record = outcome.result or outcome.summary
        attrs: dict[str, Any] = {k: record[k] for k in RESULT_KEYS if record.get(k) is not None}
        attrs.update(status=outcome.status, reason=outcome.reason, exit_code=outcome.exit_code,
                     agent_seconds=outcome.wall_seconds)
        if outcome.status != FINISHED:
            attrs["stderr_tail"] = outcome.stderr_tail
        for key, attr in attrs.items():
            trial.set_user_attr(key, attr)
        if imputed is not None:
            trial.set_user_attr("imputed", self.spec.impute)
        self._watch_flapping(outcome)
        if outcome.status == FINISHED or imputed is not None:
            self.study.tell(trial, float(value))  # type: ignore[arg-type]
        elif outcome.status == PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            frozen = self.study.tell(trial, state=TrialState.FAIL)
            if outcome.status in RETRIED:  # not the trial's fault: run its parameters again
                adapter.retry(self.study, frozen)

    def _impute(self, outcome: Outcome, logged: list[float]) -> float | None:
        """W&B's metric.impute for a run that crashed after logging its metric: `latest` or `best` gives it
        that value, so the search learns from it (it stays `failed` in the record); `worst`, W&B's
        default, leaves it out of the samplers' data."""
        if outcome.status != FAILED or not logged or self.spec.impute == "worst":
            return None
        return logged[-1] if self.spec.impute == "latest" else (max if self.spec.maximize else min)(logged)

    def _watch_flapping(self, outcome: Outcome) -> None:
        """`wandb agent`'s guard against a broken script: stop after 3 failed runs in the first 60 s, or
        once failures reach max_initial_failures and outnumber successes (--no-flapping-guard: never)."""
        with self._lock:
            if outcome.status != FAILED:
                self.successes += outcome.status == FINISHED
                return
            self.failures.append(time.monotonic() - self.started)
            early = sum(seconds <= self.opts.flapping_window for seconds in self.failures)
            if not self.opts.flapping_guard or self.flapping is not None:
                return
            if early >= FLAPPING_RUNS:
                self.flapping = f"{early} runs failed in the first {self.opts.flapping_window:g} s"
            elif len(self.failures) >= self.opts.max_initial_failures and len(self.failures) > self.successes:
                self.flapping = f"{len(self.failures)} runs failed and only {self.successes} finished"
            if self.flapping is not None:
                self.stop.set()

    # -- loop -------------------------------------------------------------------------------
    def _worker(self, worker: int) -> None:
        while not self.stop.is_set():
            claim = self._claim()
            if claim == DONE:
                return
            if claim == WAIT:
                with self._ended:  # until a trial here ends (or a while, for other agents' trials)
                    self._ended.wait(WAIT_SECONDS)
                continue
            assert isinstance(claim, Trial)
            beat = adapter.Heartbeat(adapter.study_storage(self.study), adapter.trial_id(claim), self.opts.heartbeat)
            with self._lock:  # _refresh reads it from other workers' threads
                self.running[worker] = claim.number
            try:
                outcome = self._launch(claim, worker)
                self._record(claim, outcome)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Its heartbeat went silent too long (a paused or overloaded machine): another agent
                # marked it lost and queued its parameters again. Its own files keep the result.
                tqdm.write(f"agent.py: warning: trial {claim.number} was marked lost by another agent while it "
                           f"ran (heartbeat missed); its parameters run again, its result stays in "
                           f"{claim.user_attrs.get('trial_dir')}", file=sys.stderr)
            finally:
                beat.stop()
                with self._lock:
                    self.running.pop(worker, None)
                with self._ended:
                    self._ended.notify_all()
            self._refresh()

    def _refresh(self) -> None:
        with self._lock:
            t = tally(self.study)
            self.bar.n, self.bar.total = self._progress(t)
            postfix = f"done {t.finished} failed {t.failed} pruned {t.pruned}"
            if t.best is not None and self.spec.metric is not None:
                postfix += f" | best {t.best_value:.4f} ({self._label(t.best)})"
            if self.opts.gpus:  # which worker runs what where
                postfix += " | " + " ".join(f"gpu{self.gpu(w)}:#{n}" for w, n in sorted(self.running.items()))
            self.bar.set_postfix_str(postfix, refresh=True)

    def _progress(self, t: Tally) -> tuple[int, int | None]:
        """(trials done, trials in all) for the progress bar."""
        return t.settled, self.budget

    def _label(self, trial: FrozenTrial) -> str:
        """A trial's searched parameters in a few words, as delivered (not Optuna's quantiles)."""
        fixed = self.spec.fixed()
        values = {k: v for k, v in trial_values(self.spec, trial.params).items() if k not in fixed}
        return ", ".join(f"{'.'.join(k)}={_short(v)}" for k, v in list(values.items())[:3])

    def run(self) -> Tally:
        """Run until the budget, --count or the target is reached; Ctrl-C stops cleanly."""
        workers = [threading.Thread(target=self._worker, args=(i,), name=f"worker-{i}")
                   for i in range(self.opts.workers)]
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        wandb = _shared_wandb_service() if self.spec.ours else None  # only train_trial.py's runs share it
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.5)
        except KeyboardInterrupt:
            self.stop.set()
            for worker in workers:
                worker.join()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            if wandb is not None:
                wandb.teardown()
            self._refresh()
            self.bar.close()
        return tally(self.study)


def _shared_wandb_service() -> Any:
    """Start W&B's background service here; trials inherit WANDB_SERVICE and attach to it instead of
    each spawning their own (about 1 s of CPU less per trial). A trial run by hand still works alone."""
    import wandb

    wandb.setup()
    return wandb


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
