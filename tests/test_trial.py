"""Real trials: real perforatedai, real W&B offline run files, real checkpoints."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dendrisweep import pai
from dendrisweep.contract import DEPLOY_METRICS, TrialRecord
from dendrisweep.data import LabelledArrays, load_dataset
from dendrisweep.data.npy_splits import write_directory
from dendrisweep.data.synthetic import make_keyword_data
from dendrisweep.deploy import tflite
from dendrisweep.deploy.onnx_export import onnx_probabilities, torch_probabilities
from dendrisweep.trial import checkpoint
from dendrisweep.trial.cli import main
from dendrisweep.trial.trainer import score
from dendrisweep.wandb_files import OfflineRun
from tests.helpers import finished_wandb_runs, offline_wandb_env, run_script

SUMMARY_KEYS = {"status", "reason", "best_val_acc", "test_acc", "params", "macs", "dendrites_added", "epochs_run",
                "wall_seconds", "best_epoch", "stop_reason"}
EPOCH_KEYS = {"train/acc", "val/acc", "val/loss", "params", "dendrites_added", "lr", "epoch_seconds"}
# Fixed switching after 2 epochs: PAI must add a dendrite within this short run.
DENDRITIC = ["--switch-mode", "fixed", "--fixed-switch-num", "2", "--epochs", "6", "--max-dendrites", "2"]


@dataclass
class TrialRun:
    exit_code: int
    result: dict[str, Any]
    trial_dir: Path
    wandb_run: OfflineRun
    tracker_dendrites: int


def run_in_process(args: list[str], out: Path, wandb_dir: Path) -> TrialRun:
    """Run train_trial's main() here, then collect everything it wrote."""
    exit_code = main([*args, "--out-directory", str(out)])
    (trial_dir,) = [p for p in out.iterdir() if p.name.startswith("trial-")]
    result = json.loads((trial_dir / "result.json").read_text())
    wandb_run = finished_wandb_runs(wandb_dir, {result["run_id"]})[result["run_id"]]
    # PAI's tracker exists only once a dendritic trial has set it up in this process
    dendrites = pai.dendrites_added() if result["config"]["dendrites"] else 0
    return TrialRun(exit_code, result, trial_dir, wandb_run, dendrites)


@pytest.fixture(scope="module")
def dendritic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrialRun]:
    root = tmp_path_factory.mktemp("dendritic")
    with offline_wandb_env(root / "wandb-home"):
        yield run_in_process(DENDRITIC, root / "out", root / "wandb-home")


# Slow: each converts; the default run deploys from trials in analysis regenerate (test_analysis.py)
@pytest.fixture(scope="module", params=[pytest.param(["--dendrites", "false", "--epochs", "4"], marks=pytest.mark.slow),
                                        pytest.param(DENDRITIC, marks=pytest.mark.slow)],  # the same wiring
                ids=["baseline", "dendritic"])
def deploy_measured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrialRun]:
    """A trial that measures its deployed model (one int8 TFLite conversion, ~20 s)."""
    root = tmp_path_factory.mktemp("deploy-metrics")
    with offline_wandb_env(root / "wandb-home"):
        yield run_in_process([*request.param, "--deploy-metrics", "1"], root / "out", root / "wandb-home")


def test_deploy_metrics_are_the_int8_files_numbers_in_the_trials_deployed_folder(deploy_measured: TrialRun) -> None:
    result, folder = deploy_measured.result, deploy_measured.trial_dir / "deployed"
    assert deploy_measured.exit_code == 0 and result["status"] == "finished" and "deploy_error" not in result
    int8 = folder / "model_quantized_int8_io.tflite"
    assert result["tflite_int8_bytes"] == int8.stat().st_size
    assert result["arena_bytes"] > 0 and result["tflite_int8_latency_ms"] > 0
    test = load_dataset(None, result["config"]).test
    again = tflite.score(int8, test.x)[0]  # the file, scored again: the record's accuracy is this file's
    assert 0 <= result["tflite_int8_acc"] == (again.argmax(1) == test.y).mean() <= 1
    assert 0 < result["deploy_seconds"] < result["wall_seconds"]


def test_deploy_metrics_measure_the_best_checkpoint(deploy_measured: TrialRun) -> None:
    model, config = checkpoint.load(deploy_measured.trial_dir / "best_model.pt")
    x = load_dataset(None, config).test.x
    onnx = onnx_probabilities(deploy_measured.trial_dir / "deployed" / "model.onnx", x)
    assert np.abs(onnx - torch_probabilities(model, x)).max() <= 1e-4


def test_deploy_metrics_reach_the_wandb_summary_a_sweep_reads(deploy_measured: TrialRun) -> None:
    for key in ("tflite_int8_bytes", "arena_bytes", "tflite_int8_latency_ms", "tflite_int8_acc", "deploy_seconds"):
        assert deploy_measured.wandb_run.summary[key] == deploy_measured.result[key], key


def test_without_deploy_metrics_nothing_is_converted(dendritic: TrialRun) -> None:
    assert not (dendritic.trial_dir / "deployed").exists()
    record = TrialRecord.from_json(dendritic.result)
    assert all(getattr(record, key) is None for key in (*DEPLOY_METRICS, "deploy_seconds", "deploy_error"))
    assert not set(DEPLOY_METRICS) & set(dendritic.wandb_run.summary)


def test_dendritic_trial_really_adds_dendrites(dendritic: TrialRun) -> None:
    assert dendritic.exit_code == 0
    assert dendritic.tracker_dendrites >= 1  # PAI's own tracker, not the config
    per_epoch = [h["dendrites_added"] for h in dendritic.wandb_run.history]
    assert max(per_epoch) >= 1 and per_epoch[0] == 0
    params = [h["params"] for h in dendritic.wandb_run.history]
    assert max(params) > params[0]  # each dendrite copies its layer


def test_result_json_holds_the_summary(dendritic: TrialRun) -> None:
    result = dendritic.result
    assert set(result) >= SUMMARY_KEYS
    assert result["status"] == "finished" and result["reason"] == ""
    assert 0.25 < result["best_val_acc"] <= 1 and 0 <= result["test_acc"] <= 1
    assert result["dendrites_added"] <= 2 and result["params"] > 0 and result["macs"] > 0
    assert result["config"]["max_dendrites"] == 2
    assert result["data"]["digest"] and result["versions"]["perforatedai"] == "3.2.9"
    # device auto on this machine: CUDA, MPS or the CPU, whichever it has, recorded with its name
    expected = "cuda:0" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert result["config"]["device"] == "auto" and result["device"] == expected and result["device_name"]
    lines = (dendritic.trial_dir / "history.jsonl").read_text().splitlines()
    assert len(lines) == result["epochs_run"]


def test_wandb_offline_run_holds_config_history_and_summary(dendritic: TrialRun) -> None:
    run = dendritic.wandb_run
    assert run.path.is_file() and run.exit_code == 0
    assert run.config == dendritic.result["config"]  # the resolved settings, nothing else
    assert len(run.history) == dendritic.result["epochs_run"]
    assert all(set(h) >= EPOCH_KEYS for h in run.history)
    for key in SUMMARY_KEYS:
        assert run.summary[key] == dendritic.result[key], key
    assert run.artifacts == []  # log_model auto: an offline run logs no model unless asked to


def test_log_model_on_puts_the_best_model_and_its_record_in_a_wandb_model_artifact(tmp_path: Path,
                                                                                   offline_wandb: Path) -> None:
    run = run_in_process(["--epochs", "2", "--dendrites", "false", "--log-model", "on"], tmp_path / "out",
                         offline_wandb)
    (artifact,) = run.wandb_run.artifacts  # in the run file, so `wandb sync` uploads it with the run
    assert artifact["name"] == f"model-{run.result['run_id']}" and artifact["type"] == "model"
    assert "best" in artifact["aliases"] and artifact["files"] == ["best_model.pt", "result.json"]


def test_best_model_checkpoint_reloads_safely_and_scores_the_same(dendritic: TrialRun) -> None:
    model, config = checkpoint.load(dendritic.trial_dir / "best_model.pt")  # weights_only=True
    data = load_dataset(None, config)
    _, val_acc = score(model, data.val)
    assert val_acc == pytest.approx(dendritic.result["best_val_acc"], abs=1e-9)
    _, test_acc = score(model, data.test)
    assert test_acc == pytest.approx(dendritic.result["test_acc"], abs=1e-9)


def test_inference_model_keeps_single_dendrite_outputs(dendritic: TrialRun) -> None:
    """PAI 3.2.9's prepare_final_model drops a lone dendrite; ours must match the trained model."""
    model, config = checkpoint.load(dendritic.trial_dir / "best_model.pt")
    x = torch.from_numpy(load_dataset(None, config).val.x)
    with torch.no_grad():
        assert torch.allclose(pai.inference_model(model)(x), model(x), atol=1e-5)


def _history(run: TrialRun) -> list[float]:
    return [h["val/acc"] for h in run.wandb_run.history]


def test_same_config_twice_gives_the_same_validation_accuracy(tmp_path: Path, offline_wandb: Path) -> None:
    args = ["--dendrites", "0", "--epochs", "4", "--seed", "3"]
    first = run_in_process(args, tmp_path / "a", offline_wandb)
    second = run_in_process(args, tmp_path / "b", offline_wandb)
    assert _history(first) == _history(second)
    assert first.result["best_val_acc"] == second.result["best_val_acc"]


def test_two_trials_in_one_process_do_not_leak_pai_settings(tmp_path: Path, offline_wandb: Path) -> None:
    from perforatedai import globals_perforatedai as gpa

    run_in_process(["--pai-forward-function", "relu", "--max-dendrites", "1", "--improvement-threshold", "0.5",
                    *DENDRITIC[:4], "--epochs", "3"], tmp_path / "a", offline_wandb)
    second = run_in_process(["--epochs", "4"], tmp_path / "b", offline_wandb)
    pc = gpa.pc
    assert pc.get_pai_forward_function() is torch.sigmoid
    assert pc.get_max_dendrites() == 3 and pc.get_switch_mode() == pc.DOING_HISTORY
    assert pc.get_improvement_threshold() == 0.001
    # ... and the second trial trained exactly as it does alone in a fresh process.
    alone = run_script("train_trial.py", "--epochs", "4", "--out-directory", str(tmp_path / "c"))
    assert alone.returncode == 0, alone.stderr
    (trial_dir,) = (tmp_path / "c").iterdir()
    history = [json.loads(line)["val/acc"] for line in (trial_dir / "history.jsonl").read_text().splitlines()]
    assert history == _history(second)


def test_diverging_trial_is_recorded_and_exits_0(tmp_path: Path, offline_wandb: Path) -> None:
    train, val, classes = make_keyword_data(0)
    scale = np.float32(1e37)  # unnormalised features: the activations overflow to inf
    write_directory(tmp_path / "data", LabelledArrays(train.x * scale, train.y),
                    LabelledArrays(val.x * scale, val.y), classes)
    run = run_in_process(["--data-directory", str(tmp_path / "data"), "--epochs", "3"], tmp_path / "out",
                         offline_wandb)
    assert run.exit_code == 0
    assert run.result["status"] == "diverged" and "loss became" in run.result["reason"]
    assert run.wandb_run.summary["status"] == "diverged" and run.wandb_run.exit_code == 0


def test_failing_trial_records_its_reason_and_exits_non_zero(tmp_path: Path, offline_wandb: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("PAI exploded")

    monkeypatch.setattr(pai, "record_epoch", broken)  # a fault injected inside the real library call
    run = run_in_process(["--epochs", "3"], tmp_path / "out", offline_wandb)
    assert run.exit_code == 1
    assert run.result["status"] == "failed" and run.result["reason"] == "RuntimeError: PAI exploded"
    assert run.wandb_run.summary["reason"] == "RuntimeError: PAI exploded" and run.wandb_run.exit_code == 1


def test_trial_script_runs_end_to_end_as_a_subprocess(tmp_path: Path) -> None:
    done = run_script("train_trial.py", "--epochs", "2", "--dendrites", "false",
                      "--out-directory", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (trial_dir,) = (tmp_path / "out").iterdir()
    assert json.loads((trial_dir / "result.json").read_text())["status"] == "finished"
    assert not (tmp_path / "pai").exists()  # PAI's files stay inside the trial folder


@pytest.mark.parametrize("args, message", [
    (["--device", "cuda"], "device: cuda asked for, but"),
    (["--device", "cuda:7"], "device: cuda:7 asked for, but"),
    (["--device", "gpu"], "device: 'gpu' is not auto, cpu, cuda, cuda:N or mps"),
    (["--amp", "fp16", "--device", "cpu"], "amp: fp16 needs a GPU"),
])
def test_a_device_this_machine_lacks_is_one_line_and_exit_2_before_anything_is_written(
        args: list[str], message: str, tmp_path: Path, offline_wandb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.device_count() > 7 or (torch.cuda.is_available() and args == ["--device", "cuda"]):
        pytest.skip("this machine has that GPU")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--epochs", "1", "--out-directory", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not any(offline_wandb.glob("**/offline-run-*"))


def test_bf16_mixed_precision_trains_with_dendrites(tmp_path: Path, offline_wandb: Path) -> None:
    run = run_in_process(["--amp", "bf16", "--epochs", "4", "--switch-mode", "fixed", "--fixed-switch-num", "2",
                          "--max-dendrites", "1"], tmp_path / "out", offline_wandb)
    assert run.exit_code == 0 and run.result["dendrites_added"] == 1 and run.result["best_val_acc"] > 0.25


def test_both_arms_train_until_done_not_until_the_cap(tmp_path: Path, offline_wandb: Path) -> None:
    """PAI ends the dendritic trial; PAI's own rule ends the baseline; the cap is only a safety net."""
    quick = ["--n-epochs-to-switch", "3", "--scheduler-patience", "1", "--max-dendrite-tries", "1"]
    dendritic = run_in_process([*quick, "--max-dendrites", "1", "--epochs", "200"], tmp_path / "d", offline_wandb)
    baseline = run_in_process([*quick, "--dendrites", "0", "--epochs", "200"], tmp_path / "b", offline_wandb)
    assert dendritic.result["stop_reason"] == "PAI finished" and dendritic.result["dendrites_added"] == 1
    assert baseline.result["stop_reason"] == "converged (PAI's stopping rule)"
    assert dendritic.result["epochs_run"] < 200 and baseline.result["epochs_run"] < 200


def test_a_cap_short_of_pais_schedule_is_warned_about_and_the_trial_says_it_was_capped(
        tmp_path: Path, offline_wandb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_in_process(["--epochs", "2"], tmp_path / "out", offline_wandb)
    err = capsys.readouterr().err
    assert ("train_trial.py: warning: the epoch cap may stop this trial before PAI finishes: its history schedule "
            "can take 70 epochs (max_dendrites=3, max_dendrite_tries=2, n_epochs_to_switch=10, "
            "initial_history_after_switches=0), more than epochs=2") in err
    assert run.exit_code == 0 and run.result["stop_reason"] == "epoch cap" and run.result["epochs_run"] == 2


@pytest.mark.slow  # about 90 epochs (a minute or two on 2 cores)
def test_a_default_dendritic_trial_ends_when_pai_finishes(tmp_path: Path, offline_wandb: Path) -> None:
    run = run_in_process([], tmp_path / "out", offline_wandb)
    assert run.result["stop_reason"] == "PAI finished" and run.result["epochs_run"] < 500
