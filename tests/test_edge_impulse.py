"""The Edge Impulse block: every UI parameter provably reaches training, and the exported model.onnx scores
what the trained model scores."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dendrisweep.data import COEFFICIENTS, LabelledArrays, load_dataset
from dendrisweep.data.npy_splits import write_directory
from dendrisweep.data.synthetic import make_keyword_data
from dendrisweep.deploy.onnx_export import onnx_probabilities, torch_probabilities
from dendrisweep.edge_impulse.packaging import BLOCK_DIR, BLOCK_REQUIREMENTS, PARAMETERS_FILE, main, render
from dendrisweep.edge_impulse.runtime import HOME_ENV
from dendrisweep.settings import SETTINGS, lookup
from dendrisweep.trial import checkpoint
from tests.helpers import (
    ODD_FRAMES,
    ROOT,
    assert_deployment_verified,
    assert_tensorflow_2_19_scores_alike,
    block_trial,
    edge_impulse_call,
    entrypoint,
    free_port,
    odd_frames,
    run_main,
    run_script,
)

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


def test_the_blocks_requirements_are_exact_pins_from_the_lock() -> None:
    """Generated, never hand-kept: what the block imports and all that needs, each `name==version` as
    requirements.lock (the environment these tests run in: test_project.py) has it."""
    assert main(["requirements", "--check"]) == 0
    pins = [line for line in BLOCK_REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[^=\s;]+", pin) for pin in pins), pins
    assert {"torch", "perforatedai", "tensorflow", "onnx2tf", "ai-edge-litert"} <= {p.split("==")[0] for p in pins}


def test_parameters_json_follows_edge_impulse_conventions() -> None:
    block = json.loads(PARAMETERS_FILE.read_text())
    assert block["type"] == "machine-learning" and block["info"]["operatesOn"] == "other"  # "Classification": any data
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
    shown = [p["name"] for p in PARAMETERS if p.get("section") != "advanced"]
    assert shown == ["Learning rate", "Epoch cap", "Features per frame", "Dendrites"]  # at most four, clear
    assert "repositoryUrl" not in block["info"]  # optional; never a placeholder


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


def test_a_near_miss_of_a_parameter_is_an_error_not_ignored(ei_data: Path) -> None:
    done = edge_impulse_call(ei_data / "data", ei_data / "out", ei_data / "train_input.json",
                             {"max-dendrite": "2"}, "--print-config")
    assert done.returncode == 2 and "did you mean 'max_dendrites'" in done.stderr


def test_a_regression_project_is_refused(ei_data: Path) -> None:
    (ei_data / "train_input.json").write_text(json.dumps({"mode": "regression"}))
    done = edge_impulse_call(ei_data / "data", ei_data / "out", ei_data / "train_input.json", {})
    assert done.returncode == 2 and "trains classifiers only" in done.stderr


@pytest.mark.slow  # a second whole block run: the default run keeps the one called as Edge Impulse's runner calls it
def test_block_ships_the_gated_files_of_a_model_whose_onnx_scores_what_the_trained_model_scores(ei_data: Path) -> None:
    params = {"epochs": "4", "switch-mode": "fixed", "fixed-switch-num": "2", "max-dendrites": "1",
              "compare-baseline": "1"}
    # Relative paths, as in the README: the files must land in ./out, not in the trial's own folder.
    done = edge_impulse_call(Path("data"), Path("out"), Path("train_input.json"), params, cwd=ei_data)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "One run each, same seed and data (a first look, not a verdict" in done.stdout  # compare_baseline
    out = ei_data / "out"
    assert {p.name for p in out.iterdir()} == {"model.tflite", "model_quantized_int8_io.tflite",
                                               "training_summary.json"}
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["classes"] == ["down", "no", "up", "yes"] and summary["status"] == "finished"
    assert summary["onnx_acc"] == summary["torch_acc"] and summary["max_prob_diff"] <= 1e-4
    assert 0.25 < summary["onnx_int8_acc"] <= 1  # the int8 path is scored and reported
    # Independently: the ONNX file the TFLite files were made from, scored by onnxruntime, against the trained model.
    trial_dir = block_trial(ei_data)
    model, config = checkpoint.load(trial_dir / "best_model.pt")
    data = load_dataset(ei_data / "data", config)
    onnx = trial_dir / "deployed" / "model.onnx"
    probs = onnx_probabilities(onnx, data.val.x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # probabilities: a softmax output
    expected = torch_probabilities(model, data.val.x)
    assert (probs.argmax(1) == data.val.y).mean() == (expected.argmax(1) == data.val.y).mean()
    assert np.abs(probs - expected).max() <= 1e-4
    assert onnx_probabilities(onnx, data.val.x[:1]).shape == (1, 4)  # batch 1
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
    # What `edge-impulse-blocks push` sends holds no runner data or trial folders.
    ignored = (block / ".dockerignore").read_text().split()
    assert {"ei-block-data/", "trials/", "data/", "out/", "wandb/"} <= set(ignored)


def test_the_image_builds_only_from_the_packaged_folder_and_says_so_elsewhere(tmp_path: Path) -> None:
    """`edge-impulse-blocks push` sends the folder it runs in; run in edge_impulse/ it would send a Dockerfile
    without the code. The Dockerfile's guard step (run here as Docker runs a RUN line: /bin/sh -c, in the
    copied context) refuses that build with instructions and passes in a packaged folder."""
    dockerfile = (BLOCK_DIR / "Dockerfile").read_text().splitlines()
    (guard,) = [line.removeprefix("RUN ") for line in dockerfile if line.startswith("RUN test -f train_trial.py")]
    assert dockerfile.index(f"RUN {guard}") > dockerfile.index("COPY . ./")
    refused = subprocess.run(["/bin/sh", "-c", guard], cwd=BLOCK_DIR, capture_output=True, text=True)
    assert refused.returncode == 1 and "python -m dendrisweep.edge_impulse package DIR" in refused.stderr
    assert run_script("-m", "dendrisweep.edge_impulse", "package", str(tmp_path / "block")).returncode == 0
    assert subprocess.run(["/bin/sh", "-c", guard], cwd=tmp_path / "block").returncode == 0


def runner_call(home: Path, app: Path, *extra_args: str, shape: str = "", python: str = sys.executable,
                script: Path = ROOT / "train_trial.py") -> subprocess.CompletedProcess[str]:
    """Exactly what `edge-impulse-blocks runner` runs (edge-impulse-cli cli/block-runner.ts): the block's
    entry point with --epochs, --learning-rate, --validation-set-size and --input-shape (`shape`), then the
    user's --extra-args; the project data mounted at `home` (where the block finds it: HOME_ENV stands in for
    the container's /home), the process started in `app` (the image's WORKDIR)."""
    _, unbuffered, _, *flags = entrypoint()
    args = [python, "-X", "importtime", unbuffered, str(script), *flags, "--epochs", "4", "--learning-rate", "0.005",
            "--validation-set-size", "0.2", "--input-shape", shape or f"({ODD_FRAMES}, {SPECTROGRAM_BINS})",
            *extra_args]
    closed = f"http://127.0.0.1:{free_port()}"  # the network cut, as `docker run --network=none` cuts it
    app.mkdir(exist_ok=True)
    return subprocess.run(args, cwd=app, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "WANDB_MODE": "disabled", HOME_ENV: str(home), "HTTP_PROXY": closed,
                               "HTTPS_PROXY": closed, "ALL_PROXY": closed, "http_proxy": closed,
                               "https_proxy": closed, "NO_PROXY": ""})


def requirement_names(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {requirement_names_of(line) for line in lines if line}


def closure(names: set[str]) -> set[str]:
    """The distributions `names` install: themselves and their dependencies (extras left out), transitively."""
    from importlib.metadata import PackageNotFoundError, requires

    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [requirement_names_of(line) for line in needs if "extra ==" not in line]
    return found


def requirement_names_of(line: str) -> str:
    return re.split(r"[<>=!~;\[ (]", line.strip())[0].lower().replace("_", "-")


def imported_distributions(importtime_log: str) -> set[str]:
    """The distributions of every module a process imported (python -X importtime's lines)."""
    from importlib.metadata import packages_distributions

    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in importtime_log.splitlines()
             if line.startswith("import time:") and "|" in line}
    found = packages_distributions()
    return {d.lower().replace("_", "-") for name in names for d in found.get(name, [])}


SPECTROGRAM_BINS = 65  # a spectrogram block's frame width (FFT length 128): not MFCC's 13, though 13 divides 49 x 65


def wide_frames(split: Any, width: int = SPECTROGRAM_BINS) -> np.ndarray:
    """Learnable `width`-wide frames from the 13-coefficient synthetic ones (a fixed random projection)."""
    projection = np.random.default_rng(width).normal(size=(COEFFICIENTS, width)).astype(np.float32)
    frames = odd_frames(split).x.reshape(len(split.y), ODD_FRAMES, COEFFICIENTS)
    return (frames @ projection / np.sqrt(COEFFICIENTS)).reshape(len(split.y), -1).astype(np.float32)


def runner_project(home: Path, width: int = SPECTROGRAM_BINS) -> np.ndarray:
    """A project as the runner downloads it into the folder it mounts at /home (no validation split, 1-based
    labels, `width`-wide frames, train_input.json beside them); its labels."""
    train, val, _ = make_keyword_data(2)
    x = np.concatenate([wide_frames(train, width), wide_frames(val, width)])
    y = np.concatenate([train.y, val.y])
    np.save(home / "X_train_features.npy", x)
    np.save(home / "y_train.npy", (y + 1).reshape(-1, 1))
    (home / "train_input.json").write_text(json.dumps({"classes": ["down", "no", "up", "yes"],
                                                       "mode": "classification", "convertInt8": True,
                                                       "inputShapeString": f"({x.shape[1]},)"}))
    return y


def block_log(done: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))[-3000:]


def test_the_runners_exact_call_trains_on_the_mounted_project_and_ships_only_gated_files(tmp_path: Path) -> None:
    """No --data-directory, --out-directory or --info-file: the block reads the project where the runner
    mounts it, folds its 49 x 65 spectrogram frames 65 wide as the input shape says, and leaves there
    exactly the files the gate judged."""
    home, app = tmp_path / "home", tmp_path / "app"
    home.mkdir()
    y = runner_project(home)
    (home / "model.onnx").write_bytes(b"an earlier run's file")  # never left beside the gated files
    done = runner_call(home, app, "--switch-mode", "fixed", "--fixed-switch-num", "2", "--max-dendrites", "1")
    assert done.returncode == 0, block_log(done)
    first = done.stdout.splitlines()[0]
    assert first == f"frame layout: {ODD_FRAMES} frames x 65 features (from --input-shape ({ODD_FRAMES}, 65))"
    shipped = {p.name for p in home.iterdir()} - {"X_train_features.npy", "y_train.npy", "train_input.json"}
    assert shipped == {"model.tflite", "model_quantized_int8_io.tflite", "training_summary.json"}
    summary = json.loads((home / "training_summary.json").read_text())
    assert summary["status"] == "finished" and summary["classes"] == ["down", "no", "up", "yes"]
    assert summary["frame_layout"] == first.removeprefix("frame layout: ")
    (trial_dir,) = (app / "trials").glob("trial-*")  # the trial's own folder: scratch in the container
    model, config = checkpoint.load(trial_dir / "best_model.pt")
    assert (config["epochs"], config["learning_rate"], config["validation_set_size"]) == (4, 0.005, 0.2)
    assert config["features_per_frame"] == SPECTROGRAM_BINS and model.features[0].in_channels == SPECTROGRAM_BINS
    data = load_dataset(home, config)
    assert len(data.val.y) == round(0.2 * len(y))  # carved by --validation-set-size
    assert_deployment_verified(home, summary, data.test)
    for name in ("model.tflite", "model_quantized_int8_io.tflite"):  # byte for byte what the gate judged
        assert (home / name).read_bytes() == (trial_dir / "deployed" / name).read_bytes()
    # The block's own requirements (with what they pull in) hold every project dependency it imported.
    imported = imported_distributions(done.stderr) & requirement_names(ROOT / "requirements.txt")
    installed = closure(requirement_names(BLOCK_REQUIREMENTS))
    assert imported - installed <= {"pyarrow"}, imported - installed  # pandas (perforatedai's) imports it if present
    assert not imported & {"optuna", "sqlalchemy", "grpcio", "psycopg", "sweeps", "espeakng-loader"}
    closing = done.stdout.strip().splitlines()[-14:]  # the log Studio shows ends with what was shipped
    assert any(line.startswith("Deployed model, test split") for line in closing)
    assert any("accuracy, TFLite int8" in line for line in closing)


@pytest.mark.slow  # a second block run and a TensorFlow 2.19 virtualenv (~75 s): CI's slow pass runs it
def test_the_shipped_files_score_alike_in_tensorflow_2_19(tmp_path: Path, tensorflow_2_19: str) -> None:
    """Edge Impulse's own TensorFlow version loads both files the block ships and answers as LiteRT did."""
    home = tmp_path / "home"
    home.mkdir()
    runner_project(home)
    done = runner_call(home, tmp_path / "app", "--switch-mode", "fixed", "--fixed-switch-num", "2",
                       "--max-dendrites", "1")
    assert done.returncode == 0, block_log(done)
    config = json.loads((block_trial(tmp_path / "app") / "result.json").read_text())["config"]
    assert_tensorflow_2_19_scores_alike(home, load_dataset(home, config).test, tensorflow_2_19)


def test_the_runners_exact_call_with_no_project_data_stops_in_one_line(tmp_path: Path) -> None:
    done = runner_call(tmp_path, tmp_path / "app")
    assert done.returncode == 2, block_log(done)
    assert block_log(done).strip().splitlines() == [
        f"train_trial.py: error: no Edge Impulse project data: --data-directory was not given and {tmp_path} holds "
        "neither X_split_train.npy + Y_split_train.npy (Studio) nor X_train_features.npy + y_train.npy "
        "(edge-impulse-blocks runner); a block never trains on built-in data"]
    assert not list(tmp_path.rglob("trial-*")) and not list(tmp_path.rglob("*.tflite"))


@pytest.mark.parametrize(("frames", "width", "shape", "used", "doubted"), [
    (50, 65, "(50, 65)", 65, False), (50, 65, "", 13, True),  # a spectrogram; without its shape 13 also divides
    (49, 26, "(49, 26)", 26, False), (49, 26, "", 13, False),  # 26 MFCC coefficients; without the shape: 13, said
], ids=["spectrogram-shaped", "spectrogram-flat", "mfcc26-shaped", "mfcc26-flat"])
def test_the_frame_layout_is_what_edge_impulse_states_or_said_to_be_the_default(
        frames: int, width: int, shape: str, used: int, doubted: bool, tmp_path: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    train, val, classes = make_keyword_data(2, 400)
    flat = [LabelledArrays(np.resize(part.x, (len(part.y), frames * width)), part.y) for part in (train, val)]
    write_directory(tmp_path / "data", *flat, classes)
    args = ["--data-directory", str(tmp_path / "data"), "--out-directory", str(tmp_path / "runs"), "--epochs", "1",
            "--dendrites", "false", *(("--input-shape", shape) if shape else ())]
    done = run_main(capfd, "train_trial.py", *args, env={"WANDB_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-2000:]
    source = f"--input-shape {shape}" if shape else "the default of features_per_frame (13)"
    assert done.stdout.startswith(f"frame layout: {frames * width // used} frames x {used} features (from {source}")
    (trial_dir,) = (tmp_path / "runs").glob("trial-*")
    record = json.loads((trial_dir / "result.json").read_text())
    assert record["data"]["layout"].startswith(f"{frames * width // used} frames x {used} features")
    assert ("WARNING: the frame width 13 is the default" in done.stderr) == doubted
    assert bool(record["data"].get("layout_warning")) == doubted


@pytest.mark.slow
def test_the_packaged_block_trains_in_a_fresh_virtualenv_of_its_own_requirements(tmp_path: Path) -> None:
    """The container without Docker: a new virtualenv with edge_impulse/requirements.txt alone (several GB
    from the registry), the packaged folder, the runner's call, the network cut."""
    venv, block = tmp_path / "venv", tmp_path / "block"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-r",
                              str(BLOCK_REQUIREMENTS)], capture_output=True, text=True, timeout=3000)
    assert install.returncode == 0, install.stderr[-3000:]
    assert run_script("-m", "dendrisweep.edge_impulse", "package", str(block)).returncode == 0
    home = tmp_path / "home"
    home.mkdir()
    runner_project(home)
    done = runner_call(home, tmp_path / "app", "--dendrites", "false", python=str(venv / "bin" / "python"),
                       script=block / "train_trial.py")
    assert done.returncode == 0, block_log(done)
    summary = json.loads((home / "training_summary.json").read_text())
    assert summary["tflite_acc"] == summary["onnx_acc"] == summary["torch_acc"] > 0.5
    assert (home / "model_quantized_int8_io.tflite").is_file()


def test_a_diverged_block_run_fails_with_one_line_and_a_wrong_class_list_is_refused(ei_data: Path) -> None:
    info = ei_data / "train_input.json"
    info.write_text(json.dumps({"classes": ["a", "b", "c"], "mode": "classification"}))  # the labels hold 4
    done = edge_impulse_call(ei_data / "data", ei_data / "out", info, {"epochs": "2"})
    assert done.returncode == 2 and "train_input.json names 3 classes but the labels hold 4" in done.stderr
    info.write_text(json.dumps({"classes": ["down", "no", "up", "yes"], "mode": "classification"}))
    for name in ("X_split_train.npy", "X_split_test.npy"):  # unnormalised features: the loss overflows
        np.save(ei_data / "data" / name, np.load(ei_data / "data" / name) * np.float32(1e37))
    done = edge_impulse_call(ei_data / "data", ei_data / "out", info, {"epochs": "2"})
    assert done.returncode == 1 and "training diverged" in done.stderr.strip().splitlines()[-1]
    assert not list((ei_data / "out").glob("*.tflite"))
    assert json.loads((ei_data / "out" / "training_summary.json").read_text())["status"] == "diverged"


@pytest.mark.slow
@pytest.mark.parametrize("width", [26, 32, 65, 1, 3], ids=["mfcc26", "mfe32", "spectrogram65", "raw", "motion3axes"])
def test_any_frame_width_trains_and_ships_through_the_gate(tmp_path: Path, width: int) -> None:
    """Each processing block's frame width, a few epochs, exported and verified as the block ships it (MFCC's
    13 is every other block test's; MFE's 40 folds as its 32 does)."""
    train, val, _ = make_keyword_data(2)
    np.save(tmp_path / "X_train_features.npy", np.concatenate([wide_frames(train, width), wide_frames(val, width)]))
    np.save(tmp_path / "y_train.npy", np.concatenate([train.y, val.y]) + 1)
    done = subprocess.run([*entrypoint(), "--epochs", "3", "--dendrites", "false", "--features-per-frame", str(width),
                           "--data-directory", str(tmp_path), "--out-directory", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "WANDB_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "training_summary.json").read_text())
    assert summary["tflite_acc"] == summary["onnx_acc"] == summary["torch_acc"]
    assert checkpoint.load(block_trial(tmp_path) / "best_model.pt")[0].features[0].in_channels == width
