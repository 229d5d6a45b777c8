"""The Edge Impulse block: every UI parameter provably reaches training, and the exported model.onnx scores
what the trained model scores."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dendrisweep.data import COEFFICIENTS, load_dataset
from dendrisweep.data.npy_splits import write_directory
from dendrisweep.data.synthetic import make_keyword_data
from dendrisweep.edge_impulse.packaging import PARAMETERS_FILE, render
from dendrisweep.export import onnx_probabilities, torch_probabilities
from dendrisweep.settings import SETTINGS, lookup
from dendrisweep.trial import checkpoint
from tests.helpers import ODD_FRAMES, assert_deployment_verified, edge_impulse_call, odd_frames, run_script

PARAMETERS = json.loads(PARAMETERS_FILE.read_text())["parameters"]


def ui_text(item: dict[str, Any], value: Any) -> str:
    """How Edge Impulse renders a UI value on the command line (booleans as 1/0)."""
    if item["type"] == "boolean":
        return "1" if value else "0"
    return str(value)


def other_value(item: dict[str, Any]) -> Any:
    """A valid non-default UI value for a parameter."""
    default = item["value"]
    if item["type"] == "boolean":
        return not default
    if item["type"] == "select":
        return next(v for v in item["valid"] if v != default)
    if item["type"] == "string":
        return "0.5,0.25"
    setting = lookup(item["param"])
    if item["type"] == "int":
        return default + 1 if setting.high is None or default < setting.high else default - 1
    return default / 2 if default else 0.5


@pytest.fixture
def ei_data(tmp_path: Path) -> Path:
    train, val, classes = make_keyword_data(2)
    write_directory(tmp_path / "data", odd_frames(train), odd_frames(val), classes)
    (tmp_path / "train_input.json").write_text(json.dumps(
        {"classes": ["down", "no", "up", "yes"], "mode": "classification",
         "inputShapeString": f"({ODD_FRAMES * COEFFICIENTS},)", "yType": "npy", "trainTestSplit": 0.8,
         "convertInt8": True}))
    (tmp_path / "out").mkdir()
    return tmp_path


def test_committed_parameters_json_is_what_the_registry_generates() -> None:
    assert PARAMETERS_FILE.read_text() == render()
    done = run_script("-m", "dendrisweep.edge_impulse", "parameters", "--check")
    assert done.returncode == 0, done.stderr


def test_parameters_json_follows_edge_impulse_conventions() -> None:
    block = json.loads(PARAMETERS_FILE.read_text())
    assert block["type"] == "machine-learning" and block["info"]["operatesOn"] == "audio"
    params = {p["param"] for p in PARAMETERS}
    assert all(" " not in p and "_" not in p for p in params)
    assert {"learning-rate", "epochs", "max-dendrites", "switch-mode", "improvement-threshold"} <= params
    for item in PARAMETERS:
        setting = lookup(item["param"])
        assert item["type"] in ("int", "float", "boolean", "select", "string") and item["help"]
        if setting.group == "pai" and setting.name != "dendrites":
            assert item["section"] == "advanced"
            assert item["showIf"] == {"parameter": "dendrites", "operator": "eq", "value": "true"}
        if item["type"] == "select":
            assert item["valid"] == list(setting.choices)
    assert len(PARAMETERS) == sum(s.edge_impulse for s in SETTINGS.values())


@pytest.mark.parametrize("item", PARAMETERS, ids=[p["param"] for p in PARAMETERS])
def test_every_ui_parameter_reaches_the_training_config(item: dict[str, Any], ei_data: Path) -> None:
    value = other_value(item)
    done = edge_impulse_call(ei_data / "data", ei_data / "out", ei_data / "train_input.json",
                             {item["param"]: ui_text(item, value)}, "--print-config")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    setting = lookup(item["param"])
    assert config[setting.name] == setting.coerce(ui_text(item, value)) != setting.default


def test_all_ui_parameters_at_once_with_their_defaults_give_the_registry_defaults(ei_data: Path) -> None:
    params = {p["param"]: ui_text(p, p["value"]) for p in PARAMETERS}
    done = edge_impulse_call(ei_data / "data", ei_data / "out", ei_data / "train_input.json", params,
                             "--print-config")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert all(config[s.name] == s.default for s in SETTINGS.values())


def test_an_argument_the_script_does_not_know_is_an_error_not_ignored(ei_data: Path) -> None:
    done = edge_impulse_call(ei_data / "data", ei_data / "out", ei_data / "train_input.json",
                             {"max-dendrite": "2"}, "--print-config")
    assert done.returncode == 2 and "did you mean 'max_dendrites'" in done.stderr


def test_a_regression_project_is_refused(ei_data: Path) -> None:
    (ei_data / "train_input.json").write_text(json.dumps({"mode": "regression"}))
    done = edge_impulse_call(ei_data / "data", ei_data / "out", ei_data / "train_input.json", {})
    assert done.returncode == 2 and "trains classifiers only" in done.stderr


def test_block_writes_a_model_onnx_that_scores_what_the_trained_model_scores(ei_data: Path) -> None:
    params = {"epochs": "4", "switch-mode": "fixed", "fixed-switch-num": "2", "max-dendrites": "1"}
    # Relative paths, as in the README: the files must land in ./out, not in the trial's own folder.
    done = edge_impulse_call(Path("data"), Path("out"), Path("train_input.json"), params, cwd=ei_data)
    assert done.returncode == 0, done.stderr[-2000:]
    out = ei_data / "out"
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["classes"] == ["down", "no", "up", "yes"] and summary["model"] == "model.onnx"
    assert summary["onnx_acc"] == summary["torch_acc"] and summary["max_prob_diff"] <= 1e-4
    assert 0.25 < summary["onnx_int8_acc"] <= 1  # the int8 path is scored and reported
    # Independently: the file Edge Impulse picks up, scored by onnxruntime, against the trained model.
    (trial_dir,) = out.glob("trial-*")
    model, config = checkpoint.load(trial_dir / "best_model.pt")
    data = load_dataset(ei_data / "data", config)
    probs = onnx_probabilities(out / "model.onnx", data.val.x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # probabilities: a softmax output
    expected = torch_probabilities(model, data.val.x)
    assert (probs.argmax(1) == data.val.y).mean() == (expected.argmax(1) == data.val.y).mean()
    assert np.abs(probs - expected).max() <= 1e-4
    assert onnx_probabilities(out / "model.onnx", data.val.x[:1]).shape == (1, 4)  # batch 1
    assert (out / "model_int8.onnx").is_file()
    assert_deployment_verified(out, summary, data.test)


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
