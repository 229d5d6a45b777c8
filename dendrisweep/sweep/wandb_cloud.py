"""The W&B path: hand the sweep YAML, untouched, to `wandb sweep`, then run `wandb agent` on it.

Needs a W&B server and key (it cannot run on the offline machines this project is tested on);
agents on other machines join with the `wandb agent ENTITY/PROJECT/ID` line it prints.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from dendrisweep.errors import UsageError

_AGENT_LINE = re.compile(r"Run sweep agent with: wandb agent (\S+)")


def sweep_command(path: Path, project: str | None, entity: str | None) -> list[str]:
    command = [sys.executable, "-m", "wandb", "sweep"]
    if project:
        command += ["--project", project]
    if entity:
        command += ["--entity", entity]
    return [*command, str(path)]


def agent_command(sweep_path: str, count: int | None) -> list[str]:
    return [sys.executable, "-m", "wandb", "agent", *(["--count", str(count)] if count else []), sweep_path]


def parse_sweep_path(output: str) -> str:
    """The sweep path (ID, PROJECT/ID or ENTITY/PROJECT/ID) from `wandb sweep`'s output."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)  # W&B styles the path
    match = _AGENT_LINE.search(plain)
    if not match:
        raise UsageError("wandb sweep did not print a sweep id: " + (plain.strip().splitlines() or ["no output"])[-1])
    return match.group(1)


def run_on_wandb(path: Path, project: str | None, entity: str | None, count: int | None) -> int:
    created = subprocess.run(sweep_command(path, project, entity), capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    if created.returncode != 0:
        last = (created.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"wandb sweep failed: {last}")
    sweep_path = parse_sweep_path(created.stdout + created.stderr)
    print(f"W&B sweep {sweep_path}; more agents: wandb agent {sweep_path}", flush=True)
    return subprocess.call(agent_command(sweep_path, count))
