"""The fixture every test gets: W&B offline, in a private folder. Shared helpers are in tests/helpers.py."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cache_folder

TENSORFLOW_2_19 = Path(__file__).with_name("tensorflow-2.19.txt")


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


@pytest.fixture(scope="session")
def tensorflow_2_19(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Python of a virtualenv holding TensorFlow 2.19 (tests/tensorflow-2.19.txt), which cannot live in the
    project's: made once into pytest's cache (about 1 GB, a minute from the registry) and kept while the pins match."""
    home = cache_folder(request, tmp_path_factory, "tensorflow-2.19")
    python, stamp = home / "bin" / "python", home / "pins.txt"
    if not (python.is_file() and stamp.is_file() and stamp.read_text() == TENSORFLOW_2_19.read_text()):
        shutil.rmtree(home)
        for step in ([sys.executable, "-m", "venv", str(home)],
                     [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                      str(TENSORFLOW_2_19)]):
            done = subprocess.run(step, capture_output=True, text=True, timeout=480)
            if done.returncode != 0:
                pytest.fail(f"making the TensorFlow 2.19 environment failed: {done.stderr[-2000:]}")
        stamp.write_text(TENSORFLOW_2_19.read_text())
    return str(python)

