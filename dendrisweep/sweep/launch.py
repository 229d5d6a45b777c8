"""Launch one trial exactly as `wandb agent` does, watch it, and report what was seen: `LocalLauncher`,
the launcher port (launcher.py) on this machine's processes, cores and GPUs.

A trial is described purely (`Job`: what runs; `TrialFiles`: where its files go). Its command and
environment are built purely from them (`build_command`: the job's command expanded with W&B's own macro
code, `${env} ${interpreter} ${program} ${args}`, `${args_no_hyphens}`, `${args_json_file}`,
`${envvar:NAME}`, ...; `trial_environment`); `LocalLauncher.launch` then writes the parameter file
WANDB_SWEEP_PARAM_PATH names and runs the program with stdin closed, in its own process that dies with
the agent.

What the program logs to W&B is what it reports, whatever the program: its run file is read while it
runs (wandb_files.RunFileFollower) for per-step values, which is what lets the pruner stop it early,
and for its summary at the end. A program that also keeps dendrisweep's trial contract
(train_trial.py: `history.jsonl`, `result.json` in its trial folder) is read from those files as well:
they arrive at once (W&B flushes its file every few seconds) and carry its whole TrialRecord. How the
trial ended is decided afterwards, from what was seen (settle.py).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dendrisweep.contract import (
    DATA_CACHE_ENV,
    HISTORY_FILE,
    OUT_DIR_ENV,
    RESULT_FILE,
    TRIAL_PREFIX,
    Status,
    TrialRecord,
)
from dendrisweep.sweep.settle import Observed
from dendrisweep.sweep.spec import SweepSpec
from dendrisweep.wandb_files import RunFileFollower

POLL_SECONDS = 0.5
SETTLE_SECONDS = 30  # after the program exits, W&B's service may take this long to close the run file
QUIET_SECONDS = 3  # ... unless the file stops growing first (a crashed run never gets its exit record)
TERM_GRACE_SECONDS = 30  # the trial wraps up within 25 s of a SIGTERM (trial/run.py EXIT_GRACE_SECONDS)
STDERR_TAIL_LINES = 20
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """In the child: get `signum` when the agent dies, even by SIGKILL (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signum)


@dataclass(frozen=True)
class Job:
    """What one trial runs, as `wandb agent` would run it: the sweep's command and program, the
    parameters, and where its W&B run goes (project, group). Offline there is no W&B sweep, so no run
    carries a sweep id W&B never issued: `agent.py sync` makes the sweep when the runs are uploaded."""

    command: tuple[str, ...]
    program: str | None
    params: dict[str, Any]
    group: str
    project: str
    ours: bool = True  # train_trial.py: it finishes its own W&B run, so it may share the agent's W&B service

    @classmethod
    def of(cls, spec: SweepSpec, params: dict[str, Any], group: str, project: str) -> Job:
        return cls(tuple(spec.command), spec.program, params, group, project, spec.ours)


@dataclass(frozen=True)
class TrialFiles:
    """Where one trial's files go under the sweep's run folder."""

    run_dir: Path
    sweep_id: str
    run_id: str

    @property
    def trial_dir(self) -> Path:
        return self.run_dir / "trials" / f"{TRIAL_PREFIX}{self.run_id}"

    @property
    def param_file(self) -> Path:  # where `wandb agent` puts it, relative to WANDB_DIR
        return self.run_dir / "wandb" / f"sweep-{self.sweep_id}" / f"config-{self.run_id}.yaml"

    @property
    def args_json_file(self) -> Path:
        return self.param_file.with_suffix(".json")

    @property
    def stdout(self) -> Path:
        return self.run_dir / "logs" / f"{self.run_id}.out"

    @property
    def stderr(self) -> Path:
        return self.run_dir / "logs" / f"{self.run_id}.err"


def build_command(job: Job, files: TrialFiles) -> list[str]:
    """The job's command expanded the way `wandb agent` does (with this interpreter for ${interpreter})."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = sweep_utils.create_sweep_command(list(job.command))  # ${envvar:NAME}
    args = {"args": {k: {"value": v} for k, v in job.params.items()}}
    macros: dict[str, Any] = sweep_utils.create_sweep_command_args(args)
    macros.update(interpreter=[sys.executable], program=[job.program] if job.program else [],
                  args_json_file=[str(files.args_json_file)], env=["/usr/bin/env"])
    expanded: list[str] = []
    for chunk in command:
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            expanded += macros.get(chunk[2:-1]) or []
        else:
            expanded.append(chunk)
    return expanded


def write_param_files(files: TrialFiles, params: Mapping[str, Any]) -> None:
    """The files `wandb agent` writes: config-<run>.yaml ({name: {value: v}}) and its JSON twin."""
    files.param_file.parent.mkdir(parents=True, exist_ok=True)
    files.param_file.write_text(yaml.safe_dump({k: {"value": v} for k, v in params.items()}, sort_keys=False))
    files.args_json_file.write_text(json.dumps(dict(params)))


def trial_environment(job: Job, files: TrialFiles, threads: int,
                      base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What `wandb agent` sets, plus our folders, over `base` (this process's environment). Only a
    program known to finish its W&B run itself (train_trial.py) shares the agent's W&B service: a
    script that leaves the finish to W&B's exit hook gets its own, which completes the run file as the
    script exits (a shared one takes its time)."""
    env = dict(os.environ if base is None else base)
    if not job.ours:
        env.pop("WANDB_SERVICE", None)
    env.pop("WANDB_SWEEP_ID", None)  # an agent's own, under `wandb agent`: not a sweep these runs belong to
    env.update(WANDB_RUN_ID=files.run_id, WANDB_SWEEP_PARAM_PATH=str(files.param_file),
               WANDB_DIR=str(files.run_dir), WANDB_RUN_GROUP=job.group, WANDB_PROJECT=job.project,
               WANDB_MODE=env.get("WANDB_MODE", "offline"), **{OUT_DIR_ENV: str(files.run_dir / "trials")})
    env.setdefault(DATA_CACHE_ENV, str(files.run_dir / "cache"))  # the sweep's trials generate built-in data once
    env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _HistoryReader:
    """Reads complete new lines of a growing history.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the trial records itself as killed), then SIGKILL if it does not go."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class _Rows:
    """The rows a trial logs, from whichever source delivers first: its history.jsonl (the trial
    contract, line by line) or its W&B run file; the first to deliver is the only one used, so no
    row is seen twice."""

    def __init__(self, files: TrialFiles) -> None:
        self.contract = _HistoryReader(files.trial_dir / HISTORY_FILE)
        self.wandb = RunFileFollower(files.run_dir / "wandb", files.run_id)
        self.source: str | None = None

    def new(self) -> list[dict[str, Any]]:
        contract, logged = self.contract.new(), self.wandb.poll()
        if self.source is None and (contract or logged):
            self.source = "contract" if contract else "wandb"
        return contract if self.source == "contract" else logged if self.source == "wandb" else []

    def settle(self, contract: bool) -> list[dict[str, Any]]:
        """Rows still to come after the program exited: wait for W&B to close the run file, unless the
        program kept the trial contract (its result.json already holds the final record)."""
        rows, deadline, quiet_since, size = self.new(), time.monotonic() + SETTLE_SECONDS, time.monotonic(), -1
        while not contract and self.wandb.path is not None and self.wandb.run.exit_code is None and \
                time.monotonic() < deadline:
            now_size = self.wandb.path.stat().st_size if self.wandb.path.exists() else -1
            if now_size != size:
                size, quiet_since = now_size, time.monotonic()
            elif time.monotonic() - quiet_since > QUIET_SECONDS:
                break
            time.sleep(0.1)
            rows += self.new()
        return rows


def run_trial_process(command: list[str], env: Mapping[str, str], files: TrialFiles, timeout: float | None,
                      on_row: Callable[[dict[str, Any]], bool], stop: threading.Event) -> Observed:
    """Run the trial; `on_row` (each logged row, as it arrives) returning True prunes it. Never raises
    for a trial's own failure."""
    files.stdout.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = _Rows(files)
    stopped: tuple[str, str] | None = None
    with files.stdout.open("wb") as out, files.stderr.open("wb") as err:
        process = subprocess.Popen(command, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   preexec_fn=die_with_parent)
        while True:
            try:
                process.wait(POLL_SECONDS)  # returns the moment the trial exits
                break
            except subprocess.TimeoutExpired:
                pass
            for row in rows.new():
                if stopped is None and on_row(row):
                    stopped = (Status.PRUNED, f"pruned after {_step(row)} (hyperband)")
            if stopped is None and timeout and time.monotonic() - started > timeout:
                stopped = (Status.TIMEOUT, f"timed out after {timeout:g}s")
            if stopped is None and stop.is_set():
                stopped = (Status.INTERRUPTED, "the agent was interrupted")
            if stopped is not None:
                _stop(process)
        for row in rows.settle((files.trial_dir / RESULT_FILE).is_file()):  # rows since the last poll count too
            on_row(row)
    return Observed(process.returncode, stopped, _reported(files), dict(rows.wandb.run.summary),
                    logged=rows.wandb.path is not None, stderr_tail=_tail(files.stderr),
                    seconds=time.monotonic() - started)


def _step(row: Mapping[str, Any]) -> str:
    return f"epoch {row['epoch']}" if "epoch" in row else f"step {row.get('_step')}"


def _reported(files: TrialFiles) -> TrialRecord | None:
    """The trial's own record (result.json), from a program keeping the trial contract."""
    path = files.trial_dir / RESULT_FILE
    try:
        return TrialRecord.from_json(json.loads(path.read_text())) if path.is_file() else None
    except (OSError, ValueError, TypeError):
        return None  # torn or not a record: the exit code and stderr say how it ended


class LocalLauncher:
    """Each trial a process on this machine (the `Launcher` port), `workers` at once: each gets its share of
    the cores (OMP_NUM_THREADS, unless the user set it), worker i the GPU `gpus[i % len(gpus)]`
    (CUDA_VISIBLE_DEVICES), and, with `share_wandb`, a program that finishes its own W&B runs
    (train_trial.py) attaches to one W&B service the session starts here instead of spawning its own (about
    1 s of CPU less per trial; a trial run by hand still works alone)."""

    def __init__(self, workers: int = 1, gpus: Sequence[str] = (), share_wandb: bool = True) -> None:
        self.gpus, self.share_wandb = tuple(gpus), share_wandb
        self.threads = max(1, (os.cpu_count() or 1) // workers)

    @contextmanager
    def session(self) -> Iterator[None]:
        if not self.share_wandb:
            yield
            return
        import wandb

        wandb.setup()  # trials inherit WANDB_SERVICE
        try:
            yield
        finally:
            wandb.teardown()

    def gpu(self, worker: int) -> str | None:
        """The GPU a worker's trials see (round robin over `gpus`), or None."""
        return self.gpus[worker % len(self.gpus)] if self.gpus else None

    def where(self, worker: int) -> str | None:
        gpu = self.gpu(worker)
        return None if gpu is None else f"gpu{gpu}"

    def launch(self, job: Job, files: TrialFiles, *, worker: int, on_row: Callable[[dict[str, Any]], bool],
               stop: threading.Event, timeout: float | None = None) -> Observed:
        """Start one trial as `wandb agent` would (its parameter files, its command, its environment, plus the
        worker's GPU) and watch it to its end."""
        write_param_files(files, job.params)
        env = trial_environment(job, files, self.threads)
        gpu = self.gpu(worker)
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        return run_trial_process(build_command(job, files), env, files, timeout, on_row, stop)
