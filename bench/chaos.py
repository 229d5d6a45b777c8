"""Chaos: SIGKILL sweep agents at random moments during a real 60-trial sweep, and prove nothing is lost.

Three agents (separate processes with their own runs folders, as on three machines) run a small real
train_trial.py sweep on one study. Twenty times, one of them is SIGKILLed and restarted at once, at a
moment of one of three kinds, in turn:
- mid-trial: its trial has logged an epoch and not finished (the trial gets SIGTERM from the kernel and
  records itself as stopped; the study's trial goes stale and is failed and re-queued by another agent);
- mid-write: within 0.1 s of its trial's last output line, while the agent records the trial;
- at start: 0-3 s after it was started, while it opens the study and claims a trial.
Afterwards the study must hold exactly the requested number of completed trials, every lost trial
FAIL with a reason and retried with its parameters, no duplicates, no trial process left behind, the
analysis loader must read every trial, and SQLite must pass PRAGMA integrity_check. PostgreSQL runs too
when --postgres or DENDRISWEEP_TEST_POSTGRES names a server.

    python bench/chaos.py [--trials 60] [--agents 3] [--kills 20] [--seed 0] [--postgres URL]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
from agents import ROOT, agent_error_lines, agent_errors, audit_rows, print_table, start_agent, write_sweep

from analysis.load import read_study
from dendrisweep.contract import Status, TrialRecord
from dendrisweep.sweep import optuna_adapter as adapter
from dendrisweep.sweep.audit import Audit, audit_study
from dendrisweep.sweep.storage import quiet_optuna, stored_record, stored_status

MOMENTS = ("mid-trial", "mid-write", "at start")
FIXED = {"epochs": 3, "builtin_samples": 600, "switch_mode": "fixed", "fixed_switch_num": 1}


class Fleet:
    """The agents of one study: start, watch and kill them."""

    def __init__(self, sweep: Path, storage: str, study: str, scratch: Path, agents: int) -> None:
        self.sweep, self.storage, self.study = sweep, storage, study
        self.folders = [scratch / study / f"machine{i}" for i in range(agents)]
        self.procs = [self._start(i) for i in range(agents)]
        self.started = [time.monotonic()] * agents

    def _start(self, i: int) -> subprocess.Popen[bytes]:
        return start_agent(self.sweep, self.storage, self.study, self.folders[i], "--heartbeat", "2")

    def newest_trial(self, i: int) -> Path | None:
        trials = list((self.folders[i] / self.study / "trials").glob("trial-*"))
        return max(trials, key=lambda p: p.stat().st_mtime) if trials else None

    def kill_and_restart(self, i: int) -> None:
        self.procs[i].kill()
        self.procs[i].wait()
        self.procs[i] = self._start(i)
        self.started[i] = time.monotonic()

    def all_done(self) -> bool:
        return all(p.poll() is not None for p in self.procs)


def _wait_until(predicate: Callable[[], bool], fleet: Fleet, seconds: float, poll: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not fleet.all_done():
        if predicate():
            return True
        time.sleep(poll)
    return False


def _mid_trial(fleet: Fleet, i: int) -> bool:
    def running() -> bool:
        trial = fleet.newest_trial(i)
        return bool(trial and (trial / "history.jsonl").is_file() and (trial / "history.jsonl").stat().st_size
                    and not (trial / "result.json").exists())
    return _wait_until(running, fleet, 60, 0.05)


def _mid_write(fleet: Fleet, i: int, rng: random.Random) -> bool:
    """Within 0.1 s of the trial's last line (it is exiting): the agent is recording it in the study."""
    def running() -> Path | None:
        trial = fleet.newest_trial(i)
        return trial if trial is not None and not (trial / "result.json").exists() else None
    if not _wait_until(lambda: running() is not None, fleet, 60, 0.05):
        return False
    trial = running()
    if trial is None:
        return False
    log = fleet.folders[i] / fleet.study / "logs" / f"{trial.name.removeprefix('trial-')}.out"
    done = _wait_until(lambda: log.is_file() and f"trial {log.stem}: " in log.read_text(errors="replace"),
                       fleet, 120, 0.005)
    time.sleep(rng.uniform(0, 0.1))
    return done


def _at_start(fleet: Fleet, i: int, rng: random.Random) -> bool:
    time.sleep(max(0.0, fleet.started[i] + rng.uniform(0, 3) - time.monotonic()))
    return not fleet.all_done()


def chaos(storage: str, opts: argparse.Namespace, scratch: Path) -> list[object]:
    study = f"chaos-{uuid.uuid4().hex[:8]}"
    sweep = write_sweep(scratch / f"{study}.yaml", "train_trial.py", opts.trials, FIXED)
    rng = random.Random(opts.seed)
    begun = time.perf_counter()
    fleet = Fleet(sweep, storage, study, scratch, opts.agents)
    kills = {moment: 0 for moment in MOMENTS}
    while sum(kills.values()) < opts.kills and not fleet.all_done():
        moment, i = MOMENTS[sum(kills.values()) % len(MOMENTS)], rng.randrange(opts.agents)
        if fleet.procs[i].poll() is not None:
            continue
        if moment == "mid-trial":
            hit = _mid_trial(fleet, i)
        else:
            hit = _mid_write(fleet, i, rng) if moment == "mid-write" else _at_start(fleet, i, rng)
        if hit and fleet.procs[i].poll() is None:
            fleet.kill_and_restart(i)
            kills[moment] += 1
    for proc in fleet.procs:
        proc.wait()
    wall = time.perf_counter() - begun
    time.sleep(3)  # orphaned trials have EXIT_GRACE_SECONDS to go; none should be left
    leftover = subprocess.run(["pgrep", "-f", study], capture_output=True, text=True).stdout.split()
    loaded = optuna.load_study(study_name=study, storage=storage)
    audit = audit_study(loaded, [f / study / "trials" for f in fleet.folders], budget=opts.trials)
    lost = [t for t in loaded.get_trials() if stored_status(t) == Status.LOST]
    own = Counter(_status(Path((stored_record(t) or TrialRecord()).trial_dir or "")) for t in lost)
    # A retry re-runs every parameter the lost trial had (one killed while being claimed may have had
    # only some; the rest are then suggested afresh).
    same_params = all(t.params.items() <= r.params.items() for t in lost for r in loaded.get_trials()
                      if adapter.retried(r)[-1:] == [t.number])
    rows = read_study(storage, study)[0]
    integrity = "n/a"
    if storage.startswith("sqlite:///"):
        with sqlite3.connect(storage.removeprefix("sqlite:///")) as db:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    for line in agent_error_lines(fleet.folders):
        print(f"agent error ({study}): {line}")
    return [*(kills[m] for m in MOMENTS), *(v for _, v in audit_rows(audit)),
            f"{own['stopped']} / {own['finished']} / {own['none']}",
            "yes" if same_params else "NO", len(rows), integrity, len(leftover),
            agent_errors(fleet.folders), f"{wall:.0f}"]


def _status(trial_dir: Path) -> str:
    try:
        return str(json.loads((trial_dir / "result.json").read_text()).get("status"))
    except (OSError, ValueError):
        return "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", default=os.environ.get("DENDRISWEEP_TEST_POSTGRES"))
    opts = parser.parse_args()
    quiet_optuna()
    os.environ["WANDB_MODE"] = "offline"
    columns, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        columns.append("SQLite")
        results.append(chaos(f"sqlite:///{Path(tmp) / 'study.db'}", opts, Path(tmp)))
        if opts.postgres:
            columns.append("PostgreSQL")
            results.append(chaos(opts.postgres, opts, Path(tmp)))
    names = [f"agents SIGKILLed {m}" for m in MOMENTS] + [name for name, _ in audit_rows(Audit())]
    names += ["lost trials' own result.json: stopped / finished (agent died recording it) / none",
              "retries kept the lost trial's parameters",
              "rows the analysis loader read", "SQLite PRAGMA integrity_check", "trial processes left running",
              "agent errors (tracebacks, error lines)", "wall seconds"]
    print_table(f"{opts.agents} agents, {opts.trials}-trial real sweep, {opts.kills} SIGKILLs (cwd {ROOT.name})",
                columns, [(name, [r[i] for r in results]) for i, name in enumerate(names)])


if __name__ == "__main__":
    main()
