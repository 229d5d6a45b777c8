"""analysis/: real studies made by the real agent, real exports scored by real onnxruntime."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from analysis.load import COLUMNS, from_offline_runs, read_study
from analysis.rank import best, finished, importance, pareto_front, row_config, smallest_within, swept_settings
from dendrisweep import ExportError, pai
from dendrisweep.data import load_dataset
from dendrisweep.deploy import onnx_export
from dendrisweep.settings import SETTINGS
from dendrisweep.trial.cli import main as trial_main
from dendrisweep.trial.trainer import strategy_for
from dendrisweep.verdict import Verdict, read_verdict
from tests.helpers import ROOT, execute_notebook, finished_wandb_runs, offline_wandb_env, run_script

# 4-epoch models sit near their decision boundaries, where int8 flips a few of the 240 held-out samples;
# the deployment gate's tolerance is widened for them (test_deploy.py holds trained models to 1.5 pp).
TINY_INT8_TOLERANCE = {"int8_tolerance_pp": {"value": 5.0}}
DENDRITIC_SWEEP = {
    "program": "train_trial.py", "method": "bayes", "metric": {"name": "best_val_acc", "goal": "maximize"},
    "run_cap": 3,
    "parameters": {**TINY_INT8_TOLERANCE, "epochs": {"value": 4}, "switch_mode": {"value": "fixed"},
                   "fixed_switch_num": {"value": 2},
                   "learning_rate": {"distribution": "log_uniform_values", "min": 0.002, "max": 0.01},
                   "max_dendrites": {"values": [1, 2]}, "width_multiplier": {"values": [0.5, 1.0]}},
}
BASELINE_SWEEP = {**DENDRITIC_SWEEP, "run_cap": 2,
                  "parameters": {**TINY_INT8_TOLERANCE, "dendrites": {"value": False}, "epochs": {"value": 4},
                                 "learning_rate": {"distribution": "log_uniform_values", "min": 0.002, "max": 0.01},
                                 "width_multiplier": {"values": [0.5, 1.0]}}}


# A W&B API key in the environment, as users have it: it must reach no file and no output.
FAKE_API_KEY = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e7d3ad"
PRINTED: list[str] = []  # everything the module's commands printed


def with_key(root: Path) -> dict[str, str]:
    """Offline W&B with the key set; HOME, TMPDIR and WANDB_DIR inside `root` so every file any library
    writes on the way (W&B settings and logs, caches) lands where the secrets test scans."""
    for folder in ("home", "tmp", "wandb-home"):
        (root / folder).mkdir(exist_ok=True)
    return {"WANDB_API_KEY": FAKE_API_KEY, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
            "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "WANDB_DIR": str(root / "wandb-home")}


def run_with_key(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_script(*args, env=with_key(root))
    PRINTED.extend((done.stdout, done.stderr))
    return done


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small dendritic sweep and its baseline, run by the real agent (with a W&B key set)."""
    root = tmp_path_factory.mktemp("sweeps")
    for name, sweep in (("tiny", DENDRITIC_SWEEP), ("tiny_baseline", BASELINE_SWEEP)):
        (root / f"{name}.yaml").write_text(yaml.safe_dump(sweep))
        done = run_with_key(root, "agent.py", str(root / f"{name}.yaml"), "--runs-dir", str(root / "runs"),
                            "--workers", "2", "--no-progress")
        assert done.returncode == 0, done.stderr[-2000:]
    yield root


@pytest.fixture(scope="module")
def report(sweeps: Path) -> Path:
    out = sweeps / "report"
    done = run_with_key(sweeps, "-m", "analysis", "report", "--storage", storage(sweeps, "tiny"), "--study", "tiny",
                        "--baseline-study", "tiny_baseline", "--baseline-storage", storage(sweeps, "tiny_baseline"),
                        "--max-params", "100000", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def verdict(sweeps: Path) -> Path:
    """The verdict on the two tiny sweeps: top 1 config each, 2 fresh seeds, real train_trial.py runs."""
    out = sweeps / "verdict"
    done = run_with_key(sweeps, "-m", "analysis", "verdict", "--storage", storage(sweeps, "tiny"), "--study", "tiny",
                        "--baseline-study", "tiny_baseline", "--baseline-storage", storage(sweeps, "tiny_baseline"),
                        "--top", "1", "--seeds", "2", "--workers", "2", "--runs-dir", str(sweeps / "runs"),
                        "--out", str(out), "--no-progress", "--include-capped")  # 4-epoch trials: all capped
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def artifacts(sweeps: Path, verdict: Path) -> Path:
    """Regenerate the verdict's choice."""
    out = sweeps / "artifacts"
    done = run_with_key(sweeps, "-m", "analysis", "regenerate", "--storage", storage(sweeps, "tiny"), "--study",
                        "tiny", "--verdict", str(verdict / "verdict.json"), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def storage(root: Path, name: str) -> str:
    return f"sqlite:///{root / 'runs' / name / 'study.db'}"


def test_study_loads_into_the_standard_frame(sweeps: Path) -> None:
    df, attrs = read_study(storage(sweeps, "tiny"), "tiny")
    assert attrs["sweep"]["metric"] == {"name": "best_val_acc", "goal": "maximize"}
    assert list(df.columns) == COLUMNS and len(df) == 3
    assert set(df["state"]) == {"finished"} and df["trial"].tolist() == [0, 1, 2]
    assert df["objective"].equals(df["best_val_acc"]) and (df["params"] > 0).all() and (df["macs"] > 0).all()
    assert df["epochs_run"].le(4).all() and df["dendrites_added"].ge(0).all()
    assert (df["epochs"] == 4).all() and df["dendrites"].all()  # settings columns: the resolved config
    assert all(Path(d).is_dir() for d in df["run_dir"])
    assert set(swept_settings(df)) <= {"learning_rate", "max_dendrites", "width_multiplier"}


def test_offline_run_folders_give_the_same_frame(sweeps: Path) -> None:
    study = read_study(storage(sweeps, "tiny"), "tiny")[0].set_index("run_id").sort_index()
    offline = from_offline_runs(sweeps / "runs" / "tiny" / "wandb").set_index("run_id").sort_index()
    assert list(offline.columns) == list(study.columns) and offline.index.equals(study.index)
    for column in ["state", "best_val_acc", "test_acc", "params", "macs", "dendrites_added", "epochs_run",
                   "data_digest", *SETTINGS]:
        assert offline[column].tolist() == study[column].tolist(), column


def test_ranking_under_constraints(sweeps: Path) -> None:
    df = read_study(storage(sweeps, "tiny"), "tiny")[0]
    top = best(df)
    assert top["objective"] == df["objective"].max()
    smallest = int(df["params"].min())
    capped = best(df, max_params=smallest)
    assert capped is not None and capped["params"] == smallest
    assert best(df, max_params=smallest - 1) is None and best(df, min_accuracy=1.01) is None
    front = pareto_front(df, "params")
    assert front["params"].is_monotonic_increasing and front["best_val_acc"].is_monotonic_increasing
    for _, row in finished(df).iterrows():  # every trial is matched or beaten by a front point
        assert ((front["params"] <= row["params"]) & (front["best_val_acc"] >= row["best_val_acc"])).any()
    within = smallest_within(df, float(top["best_val_acc"]), pp=100)
    assert within is not None and within["params"] == smallest
    assert row_config(top)["dendrites"] is True and set(row_config(top)) == set(SETTINGS)
    assert set(importance(df)) <= set(swept_settings(df))


def test_report_writes_html_md_csv_with_plots(report: Path) -> None:
    out = report
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 5
    for name in ("history", "pareto_params", "pareto_macs", "accuracy_vs_dendrites"):
        assert (out / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"plots/{name}.png" in (out / "report.md").read_text()
    assert "Best baseline (no dendrites)" in page and "Smallest dendritic model within 1 pp" in page
    assert len(pd.read_csv(out / "trials.csv")) == 3


@pytest.fixture(scope="module")
def one_dendrite_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[torch.nn.Module, dict]]:
    """A trained model whose best state has exactly one dendrite per layer (PAI's problem case)."""
    from dendrisweep.trial import checkpoint

    root = tmp_path_factory.mktemp("one")
    with offline_wandb_env(root):
        assert trial_main(["--switch-mode", "fixed", "--fixed-switch-num", "2", "--epochs", "4", "--max-dendrites",
                           "1", "--out-directory", str(root / "out")]) == 0
    (trial_dir,) = (root / "out").iterdir()
    assert json.loads((trial_dir / "result.json").read_text())["dendrites_added"] == 1
    yield checkpoint.load(trial_dir / "best_model.pt")


def test_exported_dendritic_model_passes_the_parity_gate(one_dendrite_model, tmp_path: Path) -> None:
    model, config = one_dendrite_model
    data = load_dataset(None, config)
    path = onnx_export.export_onnx(strategy_for(config).inference_model(model), data.shape.sample, tmp_path / "m.onnx")
    torch_acc, onnx_acc, max_prob_diff = onnx_export.check_parity(model, path, data.test.x, data.test.y)
    assert onnx_acc == torch_acc and max_prob_diff <= 1e-4  # (an ExportError had they differed)
    probs = onnx_export.onnx_probabilities(path, data.val.x[:1])  # batch 1 ...
    assert probs.shape == (1, 4) and np.isclose(probs.sum(), 1.0)
    assert onnx_export.onnx_probabilities(path, data.val.x).shape == (len(data.val.y), 4)  # ... and any batch
    import onnx

    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["output"]
    assert graph.node[-1].op_type == "Softmax"


@pytest.mark.parametrize("broken", ["no softmax", "PAI's unrepaired final model"])
def test_parity_gate_fails_a_broken_export(broken: str, one_dendrite_model, tmp_path: Path) -> None:
    from perforatedai import utils_perforatedai as upa

    model, config = one_dendrite_model
    data = load_dataset(None, config)
    if broken == "no softmax":
        path = onnx_export.export_onnx(pai.inference_model(model), data.shape.sample, tmp_path / "b.onnx",
                                       softmax=False)
    else:  # PAI's own final model: prepare_final_model drops a lone dendrite's weights
        path = onnx_export.export_onnx(upa.prepare_final_model(model), data.shape.sample, tmp_path / "b.onnx")
    with pytest.raises(ExportError, match="does not match the trained model"):
        onnx_export.check_parity(model, path, data.val.x, data.val.y)


def test_verdict_end_to_end_with_train_trial(sweeps: Path, verdict: Path) -> None:
    found = json.loads((verdict / "verdict.json").read_text())
    typed = read_verdict(verdict / "verdict.json")  # the file parses whole, and writes back the same keys
    assert Verdict.from_json(typed.to_json()) == typed and typed.to_json() == found and found["schema_version"] == 1
    assert {"statement", "error_reduction", "error_reduction_ci", "accuracy_diff_pp", "accuracy_diff_ci", "p_value",
            "seeds", "dendritic", "baseline", "equal_params", "compression"} <= set(found)
    assert found["seeds"] == 2 and found["statement"]
    # the trials saved their predictions on the 240 test examples: the interval covers new examples too
    assert found["population"] == "task" and found["test_examples"] == 240 and "on this task" in found["statement"]
    assert found["dendritic"]["config"]["dendrites"] is True and found["baseline"]["config"]["dendrites"] is False
    # what the answer rests on: real perforatedai's dendrites, the built-in data, and the two searches' differences
    assert found["scope"]["perforatedai"] == "3.2.9" and found["scope"]["splits"]["test"] == 240
    assert "not Perforated Backpropagation" in found["statement"] and "test 240 samples" in found["statement"]
    assert found["search_differences"] == ["run_cap: 3 vs 2"] and found["warning"] in found["statement"]
    replicated = {}
    for config in found["configs"]:
        assert config["n"] == 2 and len(config["test_acc_values"]) == 2 and not config["failed_runs"]
        replicated.update({run: config for run in config["runs"]})
    # every replicate is a train_trial.py run with its own seed, a W&B run grouped by its config
    runs = finished_wandb_runs(sweeps / "runs" / "tiny-verdict" / "wandb", set(replicated))
    for run_id, run in runs.items():
        config = replicated[run_id]
        assert run.group == f"tiny-verdict:{config['family']}-{config['run_id']}" and not run.sweep_id
        assert run.config["seed"] in found["seed_values"]
        assert {k: v for k, v in run.config.items() if k != "seed"} == config["config"]
        assert run.summary["test_acc"] in config["test_acc_values"]
        assert "test_predictions" not in run.summary  # per-example outcomes stay in the study
    report = (verdict / "report.md").read_text()
    assert report.index("## Verdict") < report.index("## Summary") and found["statement"] in report


def test_regenerate_end_to_end(artifacts: Path, verdict: Path) -> None:
    out = artifacts
    comparison = json.loads((out / "comparison.json").read_text())
    chosen = json.loads((verdict / "verdict.json").read_text())
    assert comparison["reproduction"]["run_id"] == chosen["dendritic"]["run_id"]  # the verdict's choice
    assert "verdict" in comparison["chosen_by"] and "verdict" in comparison["baseline_source"]
    for name in ("dendritic", "baseline"):
        model = comparison[name]
        assert {"best_val_acc", "test_acc", "onnx_acc", "onnx_int8_acc", "params", "macs", "onnx_bytes",
                "onnx_latency_ms", "dendrites_added"} <= set(model) and model["split"] == "test"
        assert model["onnx_acc"] == model["test_acc"] == model["torch_acc"] and model["max_prob_diff"] <= 1e-4
        assert 0 <= model["onnx_int8_acc"] <= 1 and model["onnx_latency_ms"] > 0
        assert (out / model["files"]["onnx"]).is_file() and (out / model["files"]["onnx_int8"]).is_file()
        # The deployment gate: the chain Edge Impulse runs, float32 and int8 TFLite on the held-out split.
        assert model["tflite_acc"] == model["onnx_acc"] and model["tflite_max_prob_diff"] <= 1e-4
        assert model["tflite_acc"] - model["tflite_int8_acc"] <= model["int8_tolerance_pp"] / 100
        assert model["tflite_int8_bytes"] < model["tflite_bytes"] and model["arena_bytes"] > 0
        assert model["tflite_int8_latency_ms"] > 0
    assert comparison["baseline"]["dendrites_added"] == 0
    assert comparison["reproduction"]["within_tolerance"] and comparison["reproduction"]["data_digest_matches"]
    best_config = yaml.safe_load((out / "best_config.yaml").read_text())
    assert best_config["dendrites"] is True and set(best_config) == set(SETTINGS)
    printed = run_script("train_trial.py", "--config", str(out / "best_config.yaml"), "--print-config")
    assert json.loads(printed.stdout) == best_config  # usable as train_trial.py --config
    assert "reproduced" in (out / "comparison.md").read_text()


# Loaded by every Python process started with its folder on PYTHONPATH: the retrained trials export without
# their softmax, as a broken exporter would.
BROKEN_EXPORT = """
from dendrisweep.deploy import onnx_export

real_export = onnx_export.export_onnx
onnx_export.export_onnx = lambda *a, **k: real_export(*a, **{**k, "softmax": False})
"""


def test_regenerate_exits_non_zero_when_the_export_is_broken(sweeps: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The trials deploy their own models: the broken export happens there, recorded as their deploy_error,
    and regenerate fails on it (exit 1, the numbers named) without writing a comparison."""
    from analysis.cli import main

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "sitecustomize.py").write_text(BROKEN_EXPORT)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'broken'}:{ROOT}")
    monkeypatch.chdir(ROOT)
    code = main(["regenerate", "--storage", storage(sweeps, "tiny"), "--study", "tiny", "--out", str(tmp_path)])
    failed = "export check failed: dendritic.onnx does not match the trained model"
    assert code == 1 and failed in capsys.readouterr().err
    assert not (tmp_path / "comparison.json").exists()


@pytest.mark.parametrize("args, message", [
    (["report", "--storage", "sqlite:////nonexistent/x.db", "--study", "x"], "cannot read sqlite:////nonexistent"),
    (["report", "sweeps/quickstart.yaml", "--runs-dir", "/nonexistent"], "no study for sweeps/quickstart.yaml"),
    (["report"], "name one source"),
    (["report", "--wandb-dir", "/nonexistent"], "no W&B offline runs"),
    (["regenerate", "--storage", "sqlite:///x.db"], "--storage and --study go together"),
])
def test_analysis_bad_input_is_one_line(args: list[str], message: str) -> None:
    done = run_script("-m", "analysis", *args)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr


@pytest.mark.parametrize("where", ["study", "wandb-offline"])
def test_notebook_executes_on_a_study_and_on_its_wandb_offline_runs(sweeps: Path, tmp_path: Path, where: str) -> None:
    """On the study with its options at their defaults; on its W&B offline runs with every option set (the
    baseline sweep's study, the compression margin, the curves drawn)."""
    source = sweeps / "runs" / "tiny" if where == "study" else sweeps / "runs" / "tiny" / "wandb"
    options = {} if where == "study" else {"DENDRISWEEP_BASELINE": str(sweeps / "runs" / "tiny_baseline"),
                                           "DENDRISWEEP_WITHIN_PP": "100", "DENDRISWEEP_TOP": "2"}
    outputs = execute_notebook({"DENDRISWEEP_SOURCE": str(source), "DENDRISWEEP_RUNS_DIR": str(tmp_path), **options})
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 6  # parallel coordinates, curves, ...
    printed = "".join(o.get("text", "") for o in outputs)
    assert "tiny: " in printed and "objective best_val_acc (maximize)" in printed
    if options:  # the comparison it exists for: the best baseline, the smallest model near it, both fronts
        assert "best baseline: " in printed and "smallest dendritic model within 100.0 pp: " in printed
        assert sum("image/png" in o.get("data", {}) for o in outputs[-3:]) >= 2


def test_the_api_key_reaches_no_file_and_no_output(sweeps: Path, report: Path, artifacts: Path) -> None:
    """Sweep, report and regenerate ran with WANDB_API_KEY set: scan every byte they left behind."""
    files = [p for p in sweeps.rglob("*") if p.is_file()]
    assert len(files) > 100 and any(p.suffix == ".wandb" for p in files) and any(p.name == "study.db" for p in files)
    assert any(p.suffix == ".onnx" for p in files) and any(p.name == "report.html" for p in files)
    key = FAKE_API_KEY.encode()
    leaks = [str(p) for p in files if key in p.read_bytes()]
    assert leaks == [] and not [out for out in PRINTED if FAKE_API_KEY in out]
