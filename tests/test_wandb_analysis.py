"""A W&B sweep analysed where its users analyse it, through W&B's own public API (`wandb.Api`) against a
local stub of W&B's GraphQL endpoint and storage (a stub, not W&B: no W&B server is reachable here)
answering with runs and artifacts shaped exactly as wandb's own queries return them: the sweep's own
metric, W&B's paging, its duplicates, a cache that refreshes a running sweep, one-line errors, the
notebook, the verdict re-running a W&B sweep's program here, and regenerate (the run's logged model, or
a retrain on data proven by digest)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from analysis.cli import main as analysis
from analysis.load import RUNS_PER_PAGE, download_model, from_wandb_sweep
from dendrisweep import TrialRecord, UsageError
from dendrisweep.data.npy_splits import write_directory
from dendrisweep.data.synthetic import make_keyword_data
from tests.helpers import ROOT, StubWandbServer, execute_notebook, free_port, run_node, run_script

OTHER_PROGRAM = {"method": "random", "metric": {"name": "val_loss_final", "goal": "minimize"},
                 "parameters": {"lr": {"min": 0.001, "max": 0.1}, "layers": {"values": [1, 2, 3]}}}


def other_program_runs(n: int) -> list[dict]:
    """Another program's runs: its own parameters and metric, none of dendrisweep's keys."""
    return [run_node(f"r{i:03d}", {"lr": 0.001 * (i + 1), "layers": 1 + i % 3}, {"val_loss_final": 1.0 / (i + 1)})
            for i in range(n)]


@pytest.fixture
def stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StubWandbServer]:
    server = StubWandbServer(sweep_config=yaml.safe_dump(OTHER_PROGRAM), runs=other_program_runs(23))
    for key, value in server.env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    yield server
    server.close()


def test_the_objective_is_the_sweeps_own_metric_and_goal(stub: StubWandbServer, tmp_path: Path) -> None:
    df, sweep = from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    assert (sweep["metric"], sweep["maximize"]) == ("val_loss_final", False)
    assert len(df) == 23 and df["objective"].tolist() == pytest.approx([1.0 / (i + 1) for i in range(23)])
    assert df["lr"].iloc[2] == pytest.approx(0.003) and set(df["state"]) == {"finished"}


def test_runs_are_paged_as_wandbs_own_sweep_runs_page_them(stub: StubWandbServer, tmp_path: Path) -> None:
    from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    pages = stub.called("query Runs(")
    assert len(pages) == 3 and {p["perPage"] for p in pages} == {RUNS_PER_PAGE} == {10}
    assert {p["filters"] for p in pages} == {'{"$and": [{"sweep": "sw123"}]}'}


def test_a_run_listed_twice_is_one_row(stub: StubWandbServer, tmp_path: Path) -> None:
    stub.runs.insert(15, dict(stub.runs[4]))  # W&B's pages shifted under a running sweep (wandb#6614)
    df, _ = from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    assert len(df) == 23 and df["run_id"].is_unique


def test_an_ended_sweep_is_read_once_and_a_running_one_again(stub: StubWandbServer, tmp_path: Path) -> None:
    stub.sweep_state = "FINISHED"
    from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    again, _ = from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    assert len(stub.called("query Runs(")) == 3 and len(again) == 23  # the second call: the sweep only
    stub.sweep_state = "RUNNING"
    stub.runs.append(run_node("r999", {"lr": 0.5}, {"val_loss_final": 0.01}))
    fresh, sweep = from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    assert len(fresh) == 24 and sweep["state"] == "RUNNING"


def test_another_metric_is_not_read_from_the_cache(stub: StubWandbServer, tmp_path: Path) -> None:
    stub.sweep_state = "FINISHED"
    from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    df, sweep = from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache", metric="lr_missing")
    assert sweep["metric"] == "lr_missing" and df["objective"].isna().all()


def test_a_missing_sweep_and_refused_credentials_are_one_line(stub: StubWandbServer, tmp_path: Path) -> None:
    stub.sweep_state = None  # W&B answers a sweep it does not have with null
    with pytest.raises(UsageError, match=r"^W&B sweep stub-entity/proj/sw123 not found"):
        from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    stub.status = 401
    with pytest.raises(UsageError, match=r"^W&B could not read sweep stub-entity/proj/sw123: ") as error:
        from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache")
    assert "\n" not in str(error.value) and stub.env(tmp_path)["WANDB_API_KEY"] not in str(error.value)


def test_an_unreachable_server_is_one_line(stub: StubWandbServer, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(UsageError, match=r"^W&B could not read sweep stub-entity/proj/sw123: ") as error:
        from_wandb_sweep("stub-entity/proj/sw123", tmp_path / "cache", timeout=5)
    assert "\n" not in str(error.value) and "127.0.0.1" in str(error.value)


def test_the_report_on_another_programs_wandb_sweep(stub: StubWandbServer, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = run_script("-m", "analysis", "report", "--wandb-sweep", "stub-entity/proj/sw123", "--runs-dir",
                      str(tmp_path / "runs"), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    trials = (out / "trials.csv").read_text()
    assert "val_loss_final" in (out / "report.md").read_text() and len(trials.splitlines()) == 24


def test_the_cli_says_a_missing_sweep_in_one_line(stub: StubWandbServer, tmp_path: Path) -> None:
    stub.sweep_state = None
    done = run_script("-m", "analysis", "report", "--wandb-sweep", "stub-entity/proj/nope", "--runs-dir",
                      str(tmp_path / "runs"))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "not found" in done.stderr


def test_the_notebook_opens_on_a_wandb_sweep(stub: StubWandbServer, tmp_path: Path) -> None:
    """Another program's sweep: its metric, parallel coordinates, signed importance, the top runs' curves."""
    stub.histories = {run["name"]: [{"_step": e, "epoch": e + 1, "val/acc": 0.5 + 0.01 * e} for e in range(6)]
                      for run in stub.runs}
    outputs = execute_notebook({"DENDRISWEEP_SOURCE": "stub-entity/proj/sw123", "DENDRISWEEP_RUNS_DIR": str(tmp_path)})
    assert not [o for o in outputs if o.output_type == "error"], [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs)
    assert "sw123: 23 trials, objective val_loss_final (minimize)" in printed
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4
    assert len(stub.called("RunSampledHistory")) == 5  # the top 5 runs' learning curves, from W&B


NOISY = ROOT / "tests" / "programs" / "noisy_trial.py"


def noisy_wandb_sweep(stub: StubWandbServer, sweep_id: str, dendrites: bool) -> None:
    """A W&B sweep of the stand-in trial (tests/programs/noisy_trial.py): its config and six finished runs."""
    config = {"program": str(NOISY), "method": "grid", "metric": {"name": "best_val_acc", "goal": "maximize"},
              "parameters": {"dendrites": {"value": dendrites}, "width": {"values": [0.5, 1.0]},
                             "lr": {"values": [0.1, 0.2, 0.3]}, "seed": {"value": 0}}}
    stub.sweep_configs[sweep_id] = yaml.safe_dump(config)
    for i, (width, lr) in enumerate((w, lr) for w in (0.5, 1.0) for lr in (0.1, 0.2, 0.3)):
        summary = {"status": "finished", "best_val_acc": 0.8 + 0.01 * i, "test_acc": 0.8, "params": int(1000 * width)}
        stub.runs.append(run_node(f"{sweep_id}-{i}", {"dendrites": dendrites, "width": width, "lr": lr, "seed": 0},
                                  summary, sweep=sweep_id))


def test_the_verdict_on_two_wandb_sweeps_reruns_their_program_here(stub: StubWandbServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The configs, program and metric come from W&B; the replicates run on this machine (a study of their own)."""
    stub.runs.clear()
    noisy_wandb_sweep(stub, "dend1", True)
    noisy_wandb_sweep(stub, "base1", False)
    monkeypatch.setenv("NOISY_TRIAL_EFFECT", "0.05")
    code = analysis(["verdict", "--wandb-sweep", "stub-entity/proj/dend1", "--baseline-wandb-sweep",
                     "stub-entity/proj/base1", "--top", "1", "--seeds", "3", "--workers", "3", "--no-progress",
                     "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert code == 0
    found = json.loads((tmp_path / "out" / "verdict.json").read_text())
    assert found["dendritic"]["config"] == {"dendrites": True, "width": 1.0, "lr": 0.3}  # W&B's best by its metric
    assert found["baseline"]["config"]["dendrites"] is False and len(found["dendritic"]["test_acc_values"]) == 3
    assert found["studies"]["replicates"] == "dend1-verdict" and (tmp_path / "runs" / "dend1" / "study.db").is_file()
    assert found["population"] == "task" and "Dendrites help" in found["statement"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrialRecord]:
    """A real train_trial.py trial on a data folder: what a W&B run of it records."""
    root = tmp_path_factory.mktemp("trained")
    train, val, classes = make_keyword_data(3)
    write_directory(root / "data", train, val, classes)
    done = run_script("train_trial.py", "--epochs", "2", "--dendrites", "false", "--data-directory",
                      str(root / "data"), "--out-directory", str(root / "out"), cwd=root,
                      env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = (root / "out").glob("trial-*/result.json")
    return root / "data", TrialRecord.from_json(json.loads(result.read_text()))


def train_trial_sweep(stub: StubWandbServer, record: TrialRecord, data_source: str) -> None:
    """A W&B sweep of train_trial.py on another machine: the run as W&B has it (the data path is that machine's)."""
    stub.runs.clear()
    stub.sweep_configs["kws1"] = yaml.safe_dump({"program": "train_trial.py", "method": "random",
                                                 "metric": {"name": "best_val_acc", "goal": "maximize"},
                                                 "parameters": {"learning_rate": {"min": 0.001, "max": 0.01}}})
    stub.runs.append(run_node("kws-run-1", record.config, {**record.summary(), "data_source": data_source},
                              sweep="kws1"))


@pytest.mark.parametrize("given, message", [
    (None, "the sweep trained on /remote/machine/data (digest"),  # never the built-in data instead
    ("other", "is not the data the sweep trained on"),
])
def test_regenerate_on_a_wandb_sweep_needs_the_sweeps_own_data(stub: StubWandbServer, tmp_path: Path,
                                                               trained: tuple[Path, TrialRecord], given: str | None,
                                                               message: str) -> None:
    data, record = trained
    train_trial_sweep(stub, record, "/remote/machine/data")
    args = ["regenerate", "--wandb-sweep", "stub-entity/proj/kws1", "--runs-dir", str(tmp_path / "runs"),
            "--out", str(tmp_path / "artifacts")]
    if given == "other":
        train, val, classes = make_keyword_data(4)
        write_directory(tmp_path / "other", train, val, classes)
        args += ["--data-directory", str(tmp_path / "other")]
    done = run_script("-m", "analysis", *args)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "artifacts" / "best_config.yaml").exists()  # nothing trained, nothing written


@pytest.mark.slow
def test_regenerate_on_a_wandb_sweep_without_a_logged_model_retrains_on_the_data_directory(
        stub: StubWandbServer, tmp_path: Path, trained: tuple[Path, TrialRecord]) -> None:
    data, record = trained
    train_trial_sweep(stub, record, "/remote/machine/data")
    done = run_script("-m", "analysis", "regenerate", "--wandb-sweep", "stub-entity/proj/kws1", "--data-directory",
                      str(data), "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "artifacts"), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    comparison = json.loads((tmp_path / "artifacts" / "comparison.json").read_text())
    assert comparison["reproduction"]["data_digest_matches"] and comparison["reproduction"]["run_id"] == "kws-run-1"
    assert (tmp_path / "artifacts" / "dendritic_quantized_int8_io.tflite").is_file()


def test_a_runs_logged_model_is_downloaded_with_wandbs_own_client(stub: StubWandbServer, tmp_path: Path) -> None:
    stub.artifacts["model-r001"] = {"best_model.pt": b"weights", "result.json": b'{"run_id": "r001"}'}
    folder = download_model("stub-entity/proj/sw123", "r001", tmp_path / "model")
    assert folder is not None and (folder / "best_model.pt").read_bytes() == b"weights"
    assert (folder / "result.json").is_file()
    assert download_model("stub-entity/proj/sw123", "r002", tmp_path / "none") is None  # it logged no model


@pytest.mark.slow
def test_regenerate_on_a_wandb_sweep_deploys_the_runs_own_model(stub: StubWandbServer, tmp_path: Path,
                                                                trained: tuple[Path, TrialRecord]) -> None:
    """The chosen run logged its model (log_model): it is downloaded and deployed, not retrained."""
    data, record = trained
    train_trial_sweep(stub, record, "/remote/machine/data")
    folder = Path(str(record.trial_dir))
    stub.artifacts["model-kws-run-1"] = {name: (folder / name).read_bytes()
                                         for name in ("best_model.pt", "result.json")}
    done = run_script("-m", "analysis", "regenerate", "--wandb-sweep", "stub-entity/proj/kws1", "--data-directory",
                      str(data), "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "artifacts"))
    assert done.returncode == 0, done.stderr[-3000:]
    comparison = json.loads((tmp_path / "artifacts" / "comparison.json").read_text())
    reproduction = comparison["reproduction"]
    assert reproduction["model"] == "downloaded from W&B (the run's own)" and reproduction["within_tolerance"]
    assert comparison["dendritic"]["test_acc"] == record.test_acc
    assert not (tmp_path / "artifacts" / "dendritic").exists()  # not retrained: only the baseline was
