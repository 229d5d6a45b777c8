"""The fixture every test gets: W&B offline, in a private folder. Shared helpers are in tests/helpers.py."""
from __future__ import annotations

from pathlib import Path

import pytest


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
