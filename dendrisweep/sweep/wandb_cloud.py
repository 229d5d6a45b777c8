"""The sweep on W&B itself, through W&B's own client: `agent.py --wandb` and `agent.py sync`.

- `--wandb`: the YAML goes to W&B untouched (`wandb.sweep`, W&B's Python API), then W&B's own agent
  (`wandb agent`) runs it here; agents on other machines join with the command printed.
- `sync`: a study run offline becomes one W&B sweep page. Its offline runs (a real project, the study as
  group, no sweep id: launch.py) are uploaded with W&B's own `wandb sync`, then the sweep is created
  from the study's YAML with those runs as its prior runs, so W&B's search (and `wandb agent` on it)
  continues from them.
Both need a W&B server and a key; failures are one line.
"""
from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dendrisweep.errors import UsageError
from dendrisweep.sweep.launch import die_with_parent

# After Ctrl-C, how long W&B's agent gets to stop its runs (each wraps up within 25 s: trial/run.py).
STOP_SECONDS = 60


@dataclass(frozen=True)
class CloudSweep:
    entity: str
    project: str
    sweep_id: str

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.sweep_id}"


def create_sweep(config: Mapping[str, Any], project: str | None, entity: str | None,
                 prior_runs: Sequence[str] = ()) -> CloudSweep:
    """Create the sweep with W&B's own client (`wandb.sweep`); `prior_runs` (run ids already in the project)
    become the sweep's runs. W&B errors (no key, no such entity, server down) are one line."""
    import os

    import wandb

    try:
        sweep_id = wandb.sweep(dict(config), entity=entity, project=project, prior_runs=list(prior_runs) or None)
    except Exception as exc:  # noqa: BLE001  wandb's CommError, UsageError, AuthenticationError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"W&B could not create the sweep ({first})") from None
    # wandb.sweep leaves the entity and project the server answered with in the environment
    return CloudSweep(os.environ.get("WANDB_ENTITY") or entity or "", os.environ.get("WANDB_PROJECT") or project or "",
                      sweep_id)


def sweep_url(sweep: CloudSweep) -> str:
    """The sweep's page, on the W&B server this process talks to (WANDB_BASE_URL, or `wandb login --host`)."""
    from wandb.sdk import wandb_setup

    app = wandb_setup._setup(start_service=False).settings.app_url
    return f"{app}/{sweep.entity}/{sweep.project}/sweeps/{sweep.sweep_id}"


def agent_command(sweep: str, count: int | None) -> list[str]:
    """W&B's own agent on a sweep path, with this interpreter's wandb."""
    return [sys.executable, "-m", "wandb", "agent", *(["--count", str(count)] if count else []), sweep]


def run_agent(command: list[str]) -> int:
    """Run W&B's agent; forward Ctrl-C (or SIGTERM) so its runs are stopped, not left running. W&B's agent
    waits for its runs on a first SIGINT and stops them (SIGTERM) on a second, so both are sent; another
    Ctrl-C kills them. The agent runs in a session of its own, so it gets exactly what is forwarded, and
    it gets SIGINT if this process dies."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True,
                               preexec_fn=lambda: die_with_parent(signal.SIGINT))
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return process.wait()
    except KeyboardInterrupt:
        for _ in range(2):  # W&B's tiers: wait for the runs, then stop them
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(1)  # the agent enters its next tier before the next signal
        try:
            process.wait(STOP_SECONDS)
        except (KeyboardInterrupt, subprocess.TimeoutExpired):
            process.send_signal(signal.SIGINT)  # W&B's last tier: kill the runs
            process.wait()
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_on_wandb(config: Mapping[str, Any], project: str | None, entity: str | None, count: int | None) -> int:
    sweep = create_sweep(config, project, entity)
    print(f"W&B sweep {sweep_url(sweep)}; more agents: wandb agent {sweep.path}", flush=True)
    return run_agent(agent_command(sweep.path, count))


# --- offline runs into one W&B sweep --------------------------------------------------------------

def upload_command(run_folders: Sequence[Path], project: str, entity: str | None) -> list[str]:
    """W&B's own `wandb sync` of offline run folders into `project` (runs keep their ids and groups)."""
    return [sys.executable, "-m", "wandb", "sync", "--project", project, *(["--entity", entity] if entity else []),
            *map(str, run_folders)]


def upload(run_folders: Sequence[Path], project: str, entity: str | None) -> None:
    done = subprocess.run(upload_command(run_folders, project, entity), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True)
    if done.returncode != 0:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"wandb sync failed: {last}")
