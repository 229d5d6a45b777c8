"""Dendritic MobileNetV3-Small: trials, exports, weights and image data, through the same toolkit."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from dendrisweep.data import load_dataset
from dendrisweep.deploy import Policy, deploy, onnx_export
from dendrisweep.models import build_model
from dendrisweep.settings import defaults
from dendrisweep.trial import checkpoint
from dendrisweep.trial.cli import main
from dendrisweep.trial.trainer import strategy_for
from tests.helpers import ROOT, finished_wandb_runs, offline_wandb_env, run_script

TINY = ["--task", "mobilenet", "--width-multiplier", "0.25", "--image-size", "16", "--epochs", "3",
        "--learning-rate", "0.005",
        "--switch-mode", "fixed", "--fixed-switch-num", "1", "--max-dendrites", "1", "--max-dendrite-tries", "1"]


@pytest.fixture(scope="module")
def dendritic_trial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("mobilenet")
    with offline_wandb_env(root):
        assert main([*TINY, "--out-directory", str(root / "out")]) == 0
        from dendrisweep import pai

        assert pai.dendrites_added() >= 1  # PAI's tracker: dendrites were really added
    (trial_dir,) = (root / "out").iterdir()
    yield trial_dir


def test_tiny_mobilenet_trial_adds_dendrites_and_logs_to_wandb(dendritic_trial: Path) -> None:
    result = json.loads((dendritic_trial / "result.json").read_text())
    assert result["status"] == "finished" and result["config"]["task"] == "mobilenet"
    assert result["data"]["sample_shape"] == [3, 16, 16] and result["data"]["classes"] == 10
    assert result["best_val_acc"] > 0.5  # digits are learnable in three epochs
    history = [json.loads(line) for line in (dendritic_trial / "history.jsonl").read_text().splitlines()]
    assert max(h["dendrites_added"] for h in history) >= 1 and history[-1]["params"] > history[0]["params"]
    run = finished_wandb_runs(dendritic_trial.parents[1], {result["run_id"]})[result["run_id"]]
    assert run.exit_code == 0 and run.config["task"] == "mobilenet" and len(run.history) == result["epochs_run"]


def test_mobilenet_export_passes_the_parity_gate(dendritic_trial: Path, tmp_path: Path) -> None:
    model, config = checkpoint.load(dendritic_trial / "best_model.pt")  # rebuilt with its PAISequentials
    data = load_dataset(None, config)
    path = onnx_export.export_onnx(strategy_for(config).inference_model(model), data.shape.sample, tmp_path / "m.onnx")
    _, onnx_acc, _ = onnx_export.check_parity(model, path, data.test.x, data.test.y)  # an ExportError if not alike
    assert onnx_acc == json.loads((dendritic_trial / "result.json").read_text())["test_acc"]


@pytest.mark.slow  # onnx2tf on MobileNetV3-Small takes minutes on 2 cores; bench/deploy.py --mobilenet too
def test_dendritic_mobilenet_passes_the_deployment_gate(dendritic_trial: Path, tmp_path: Path) -> None:
    model, config = checkpoint.load(dendritic_trial / "best_model.pt")
    data = load_dataset(None, config)
    deployed = deploy(model, strategy_for(config).inference_model(model), data, tmp_path,
                      Policy.block(config["int8_tolerance_pp"]))
    assert deployed.tflite_acc == deployed.onnx_acc and deployed.tflite_int8_acc is not None


@pytest.mark.slow  # a second MobileNet training: the default run keeps the tiny dendritic trial
def test_dendrites_on_the_classifier_only(tmp_path: Path, offline_wandb: Path) -> None:
    out = tmp_path / "out"
    assert main([*TINY, "--dendrite-layers", "classifier", "--epochs", "2", "--out-directory", str(out)]) == 0
    from dendrisweep import pai

    assert pai.dendrites_added() >= 1  # read before loading the checkpoint resets PAI's tracker
    (trial_dir,) = (tmp_path / "out").iterdir()
    model, _ = checkpoint.load(trial_dir / "best_model.pt")
    assert "PAISequential" not in {type(m).__name__ for m in model.modules()}


def test_pretrained_weights_load_from_a_local_file_only(tmp_path: Path) -> None:
    config = {**defaults(), "task": "mobilenet", "width_multiplier": 0.25, "dendrites": False}
    shape = load_dataset(None, config).shape
    source = build_model(config, shape)
    torch.save(source.state_dict(), tmp_path / "weights.pt")
    loaded = build_model({**config, "pretrained_weights": str(tmp_path / "weights.pt")}, shape)
    for key, tensor in source.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key
    # An ImageNet-style file (1000 classes) loads all but the last classifier layer.
    imagenet = build_model(config, type(shape)(shape.sample, 1000))
    torch.save(imagenet.state_dict(), tmp_path / "imagenet.pt")
    tuned = build_model({**config, "pretrained_weights": str(tmp_path / "imagenet.pt")}, shape)
    assert torch.equal(tuned.state_dict()["features.0.0.weight"], imagenet.state_dict()["features.0.0.weight"])
    assert tuned.state_dict()["classifier.3.weight"].shape[0] == 10


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist (weights are never downloaded"),
    ("other width", "does not fit MobileNetV3-Small at this width"),
    ("not weights", "cannot load"),
])
def test_bad_pretrained_weights_exit_2(case: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    if case == "other width":
        config = {**defaults(), "task": "mobilenet", "width_multiplier": 1.0}
        torch.save(build_model(config, load_dataset(None, config).shape).state_dict(), path)
    elif case == "not weights":
        path.write_text("not a tensor file")
    done = run_script("train_trial.py", "--task", "mobilenet", "--width-multiplier", "0.25", "--pretrained-weights",
                      str(path), "--out-directory", str(tmp_path / "out"))
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def _write_images(root: Path, classes: dict[str, int], size: int = 12) -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_image_folder_is_read_once_and_split(tmp_path: Path) -> None:
    _write_images(tmp_path / "imgs", {"cat": 10, "dog": 10, "fox": 5})
    data = load_dataset(tmp_path / "imgs", {**defaults(), "task": "mobilenet", "image_size": 24})
    assert data.shape.sample == (3, 24, 24) and data.num_classes == 3
    assert len(data.train.y) + len(data.val.y) + len(data.test.y) == 25
    _write_images(tmp_path / "split" / "train", {"a": 4, "b": 4})
    _write_images(tmp_path / "split" / "val", {"a": 2, "b": 2})
    data = load_dataset(tmp_path / "split", {**defaults(), "task": "mobilenet", "test_fraction": 0.0})
    assert len(data.val.y) == 4 and data.test is None


@pytest.mark.parametrize("case, message", [
    ("one class", "needs at least two class folders"),
    ("unreadable", "cannot read"),
    ("class mismatch", "train/ has classes ['a', 'b'] but val/ has ['a', 'c']"),
    ("empty class", "class 'b' has no images"),
    ("cifar missing", "CIFAR-10 in"),
])
def test_bad_image_data_exits_2(case: str, message: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    if case == "one class":
        _write_images(root, {"a": 3})
    elif case == "unreadable":
        _write_images(root, {"a": 3, "b": 3})
        (root / "b" / "broken.png").write_text("not an image")
    elif case == "class mismatch":
        _write_images(root / "train", {"a": 2, "b": 2})
        _write_images(root / "val", {"a": 2, "c": 2})
    elif case == "empty class":
        _write_images(root, {"a": 3})
        (root / "b").mkdir()
    else:
        (root / "cifar-10-batches-py").mkdir(parents=True)
    done = run_script("train_trial.py", "--task", "mobilenet", "--data-directory", str(root),
                      "--out-directory", str(tmp_path / "out"))
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.slow  # the agent's road runs in test_agent.py; these are the shipped MobileNet YAMLs through it
@pytest.mark.parametrize("name", ["mobilenet_dendrites", "mobilenet_baseline"])
def test_mobilenet_sweep_runs_through_the_agent(name: str, tmp_path: Path) -> None:
    """The shipped YAML, cut to one tiny trial, runs offline end to end."""
    sweep = yaml.safe_load((ROOT / "sweeps" / f"{name}.yaml").read_text())
    sweep["run_cap"] = 1
    sweep["parameters"].update(epochs={"value": 2}, width_multiplier={"value": 0.25}, image_size={"value": 16})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(sweep))
    done = run_script("agent.py", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-progress", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 finished, 0 failed" in done.stdout
