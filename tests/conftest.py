"""Shared test fixtures: offline W&B, the real train_trial.py, Edge Impulse-layout data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
