"""Launch one trial exactly as `wandb agent` does, watch it, and say how it ended.

The sweep's `command` is expanded with W&B's own macro code (`${env} ${interpreter} ${program}
${args}`, `${args_no_hyphens}`, `${args_json_file}`, `${envvar:NAME}`, ...), the parameters are
written to the file named by WANDB_SWEEP_PARAM_PATH, and the program runs with stdin closed in
its own process that dies with the agent.

What the program logs to W&B is the record, whatever the program: its run file is read while it
runs (wandb_files.RunFileFollower) for per-step values, which is what lets the pruner stop it early,
and for its summary at the end. A program that also speaks dendrisweep's trial contract
(train_trial.py: `history.jsonl`, `result.json` in its trial folder) is read from those files as well:
they arrive at once (W&B flushes its file every few seconds) and carry the richer record.
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dendrisweep.contract import (
    DIVERGED,
    FAILED,
    FINISHED,
    HISTORY_FILE,
    INTERRUPTED,
    OUT_DIR_ENV,
    PREEMPTED,
    PRUNED,
    RESULT_FILE,
    TIMEOUT,
    TRIAL_PREFIX,
)
from dendrisweep.wandb_files import RunFileFollower

POLL_SECONDS = 0.5
SETTLE_SECONDS = 30  # after the program exits, W&B's service may take this long to close the run file
QUIET_SECONDS = 3  # ... unless the file stops growing first (a crashed run never gets its exit record)
TERM_GRACE_SECONDS = 20
STDERR_TAIL_LINES = 20
_PR_SET_PDEATHSIG = 1
# Exit codes of a program stopped by SIGTERM or SIGINT (negative: by the signal; 128+: its handler exited)
_PREEMPTED = {-signal.SIGTERM: signal.SIGTERM, 128 + signal.SIGTERM: signal.SIGTERM,
              -signal.SIGINT: signal.SIGINT, 128 + signal.SIGINT: signal.SIGINT}
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the agent dies, even by SIGKILL (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Outcome:
    """How a trial ended, as the agent records it."""

    status: str  # one of contract.py's states
    exit_code: int | None
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)  # result.json, from programs that write one
    summary: dict[str, Any] = field(default_factory=dict)  # the W&B run's summary
    logged: bool = False  # the program logged a W&B run
    stderr_tail: str = ""
    wall_seconds: float = 0.0


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


def build_command(template: list[str], program: str | None, params: Mapping[str, Any], files: TrialFiles) -> list[str]:
    """Expand the sweep's command the way `wandb agent` does (with this interpreter for ${interpreter})."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    command = sweep_utils.create_sweep_command(list(template))  # ${envvar:NAME}
    args = {"args": {k: {"value": v} for k, v in params.items()}}
    macros: dict[str, Any] = sweep_utils.create_sweep_command_args(args)
    macros.update(interpreter=[sys.executable], program=[program] if program else [],
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


def trial_environment(files: TrialFiles, group: str, project: str | None, threads: int,
                      share_wandb_service: bool = True, in_sweep: bool = True) -> dict[str, str]:
    """What `wandb agent` sets, plus our folders. Only a program known to finish its W&B run itself
    (train_trial.py) shares the agent's W&B service: a script that leaves the finish to W&B's exit
    hook gets its own, which completes the run file as the script exits (a shared one takes its time)."""
    env = dict(os.environ)
    if not share_wandb_service:
        env.pop("WANDB_SERVICE", None)
    if in_sweep:  # a run of a sweep (run.sweep_id); a retrained model is a run of its own
        env["WANDB_SWEEP_ID"] = files.sweep_id
    env.update(WANDB_RUN_ID=files.run_id, WANDB_SWEEP_PARAM_PATH=str(files.param_file),
               WANDB_DIR=str(files.run_dir), WANDB_RUN_GROUP=group, WANDB_MODE=env.get("WANDB_MODE", "offline"),
               **{OUT_DIR_ENV: str(files.run_dir / "trials")})
    if project:
        env["WANDB_PROJECT"] = project
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
                      on_row: Callable[[dict[str, Any]], bool], stop: threading.Event) -> Outcome:
    """Run the trial; `on_row` (each logged row, as it arrives) returning True prunes it. Never raises
    for a trial's own failure."""
    files.stdout.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rows = _Rows(files)
    verdict: tuple[str, str] | None = None
    with files.stdout.open("wb") as out, files.stderr.open("wb") as err:
        process = subprocess.Popen(command, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   preexec_fn=_die_with_parent)
        while True:
            try:
                process.wait(POLL_SECONDS)  # returns the moment the trial exits
                break
            except subprocess.TimeoutExpired:
                pass
            for row in rows.new():
                if verdict is None and on_row(row):
                    verdict = (PRUNED, f"pruned after {_step(row)} (hyperband)")
            if verdict is None and timeout and time.monotonic() - started > timeout:
                verdict = (TIMEOUT, f"timed out after {timeout:g}s")
            if verdict is None and stop.is_set():
                verdict = (INTERRUPTED, "the agent was interrupted")
            if verdict is not None:
                _stop(process)
        for row in rows.settle((files.trial_dir / RESULT_FILE).is_file()):  # rows since the last poll count too
            on_row(row)
    return _outcome(process.returncode, verdict, files, time.monotonic() - started, rows.wandb)


def _step(row: Mapping[str, Any]) -> str:
    return f"epoch {row['epoch']}" if "epoch" in row else f"step {row.get('_step')}"


def _outcome(code: int, verdict: tuple[str, str] | None, files: TrialFiles, wall: float,
             wandb: RunFileFollower) -> Outcome:
    result_path = files.trial_dir / RESULT_FILE
    try:
        result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        result = {}
    tail = _tail(files.stderr)
    outcome = Outcome(FAILED, code, result=result, summary=dict(wandb.run.summary), logged=wandb.path is not None,
                      stderr_tail=tail, wall_seconds=wall)
    if verdict is not None:
        outcome.status, outcome.reason = verdict
    elif code == 0 and result.get("status") in (FINISHED, DIVERGED):
        outcome.status, outcome.reason = result["status"], result.get("reason", "")
    elif code == 0 and not result:  # a program outside the trial contract: its exit code says it all
        outcome.status = FINISHED
    elif code in _PREEMPTED:  # a signal from outside (a cluster scheduler): not the trial's fault
        outcome.status = PREEMPTED
        outcome.reason = f"stopped by {signal.Signals(_PREEMPTED[code]).name} from outside the agent (preempted)"
    elif result.get("reason"):
        outcome.reason = result["reason"]
    elif code is not None and code < 0:
        outcome.reason = f"killed by signal {signal.Signals(-code).name}"
    else:
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        outcome.reason = f"exit code {code}: {last}"
    return outcome


def launch(files: TrialFiles, template: list[str], program: str | None, params: Mapping[str, Any], *, group: str,
           on_row: Callable[[dict[str, Any]], bool], stop: threading.Event, project: str | None = None,
           threads: int = 1, timeout: float | None = None, share_wandb_service: bool = True,
           in_sweep: bool = True, env: Mapping[str, str] | None = None) -> Outcome:
    """Start one trial as `wandb agent` would (its parameter files, its command, its environment, plus
    `env`: the worker's GPU) and watch it to its end: how every trial starts, the agent's and the
    analysis' alike."""
    write_param_files(files, params)
    env = {**trial_environment(files, group, project, threads, share_wandb_service, in_sweep), **(env or {})}
    return run_trial_process(build_command(template, program, params, files), env, files, timeout, on_row, stop)
