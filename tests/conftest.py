"""Shared test fixtures: offline W&B, the real train_trial.py, Edge Impulse-layout data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from dendrisweep.wandb_files import OfflineRun, find_run_files, read_run_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test logs to a private offline W&B folder, never to a server."""
    wandb_dir = tmp_path / "wandb-home"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    for var in ("WANDB_SWEEP_PARAM_PATH", "WANDB_RUN_ID", "WANDB_SWEEP_ID", "DENDRISWEEP_OUT_DIR"):
        monkeypatch.delenv(var, raising=False)
    return wandb_dir


@contextmanager
def offline_wandb_env(wandb_dir: Path) -> Iterator[None]:
    """The same offline W&B setup for module-scoped fixtures (which cannot use the autouse one)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("WANDB_DIR", str(wandb_dir))
        yield


def run_script(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a top-level script (train_trial.py, agent.py, or `-m analysis`) as users do, with stdin closed."""
    program = list(args[:2]) if args[0] == "-m" else [str(ROOT / args[0])]
    return subprocess.run([sys.executable, *program, *args[len(program):]], cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def print_config(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`train_trial.py --print-config ...` parsed; fails the test on a non-zero exit."""
    done = run_script("train_trial.py", "--print-config", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def finished_wandb_runs(root: Path, run_ids: set[str], timeout: float = 60) -> dict[str, OfflineRun]:
    """The offline runs `run_ids` under `root`, once each file holds its exit record: W&B's service
    closes a run file a moment after `run.finish()` returns (longer on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = {r.run_id: r for r in map(read_run_file, find_run_files(root)) if r.run_id in run_ids}
        if set(runs) == run_ids and all(r.exit_code is not None for r in runs.values()):
            return runs
        assert time.monotonic() < deadline, f"W&B run files never completed: {sorted(run_ids - set(runs))}"
        time.sleep(0.2)
