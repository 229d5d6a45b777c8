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

import numpy as np
import pytest

from dendrisweep.data import COEFFICIENTS, LabelledArrays
from dendrisweep.deploy import tflite
from dendrisweep.wandb_files import OfflineRun, find_run_files, read_run_file

ROOT = Path(__file__).resolve().parents[1]
ODD_FRAMES = 49  # not Edge Impulse's usual 50: every pooling layer sees an odd length somewhere


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


def entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT, pointed at this checkout and this interpreter."""
    line = next(text for text in (ROOT / "edge_impulse" / "Dockerfile").read_text().splitlines()
                if text.startswith("ENTRYPOINT"))
    command = json.loads(line.split(" ", 1)[1])
    assert command[:3] == ["python3", "-u", "train_trial.py"]
    return [sys.executable, "-u", str(ROOT / "train_trial.py"), *command[3:]]


def edge_impulse_call(data: Path, out: Path, info: Path, params: dict[str, str], *extra: str,
                      cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """What Edge Impulse runs: the entry point, its three arguments, then `--<param> <value>` each."""
    args = [*entrypoint(), "--data-directory", str(data), "--out-directory", str(out), "--info-file", str(info)]
    for param, value in params.items():
        args += [f"--{param}", value]
    return subprocess.run([*args, *extra], cwd=cwd or out.parent, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "WANDB_MODE": "offline"})


def assert_deployment_verified(out: Path, summary: dict[str, Any], test: LabelledArrays) -> None:
    """The two TFLite files Edge Impulse would otherwise make itself: written, int8 in and out, and
    scored here again (LiteRT reference kernels) to what the summary reports."""
    from ai_edge_litert.interpreter import Interpreter

    assert summary["deploy_split"] == "test" and summary["deploy_samples"] == len(test.y)
    assert summary["test_tflite_acc"] == summary["test_onnx_acc"] and summary["tflite_max_prob_diff"] <= 1e-4
    assert summary["test_tflite_acc"] - summary["test_tflite_int8_acc"] <= 0.015  # the default tolerance
    assert summary["tflite_bytes"] == (out / "model.tflite").stat().st_size and summary["arena_bytes"] > 0
    int8 = Interpreter(model_path=str(out / "model_quantized_int8_io.tflite"))
    assert int8.get_input_details()[0]["dtype"] == np.int8 and int8.get_output_details()[0]["dtype"] == np.int8
    again = tflite.score(out / "model_quantized_int8_io.tflite", test.x)
    assert (again.probabilities.argmax(1) == test.y).mean() == summary["test_tflite_int8_acc"]


def test_package_is_a_self_contained_block_folder(tmp_path: Path, ei_data: Path) -> None:
    block = tmp_path / "block"
    done = run_script("-m", "dendrisweep.edge_impulse", "package", str(block))
    assert done.returncode == 0 and "edge-impulse-blocks push" in done.stdout, done.stderr
    for name in ("Dockerfile", "parameters.json", "train_trial.py", "requirements.txt", "dendrisweep/trial/run.py"):
        assert (block / name).is_file(), name
    # The packaged entry point runs from the packaged code alone (as in the container).
    call = subprocess.run([sys.executable, str(block / "train_trial.py"), "--edge-impulse", "--print-config",
                           "--data-directory", str(ei_data / "data"), "--out-directory", str(ei_data / "out"),
                           "--max-dendrites", "4"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ""})
    assert call.returncode == 0 and json.loads(call.stdout)["max_dendrites"] == 4, call.stderr


def odd_frames(split: LabelledArrays, frames: int = ODD_FRAMES) -> LabelledArrays:
    """The first `frames` MFCC frames of each sample: an odd count, where every pooling layer of the
    network sees an odd length somewhere (the case that broke Edge Impulse's int8 conversion)."""
    return LabelledArrays(np.ascontiguousarray(split.x[:, :frames * COEFFICIENTS]), split.y)
