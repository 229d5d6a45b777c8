"""Loading 800 trials into pandas: from the local Optuna study (< 2 s), W&B offline runs (< 10 s) and a W&B sweep.

The study is filled through Optuna's storage API with trials carrying exactly the user attributes
agent.py records (config, data, metrics; synthetic values). The offline runs are written in W&B's
run-file format (the framing wandb-core writes, real protobuf records): run, config, 40 history
rows and a summary each. The W&B sweep is read through W&B's own public API from a local stub of its
GraphQL endpoint (no W&B server is reachable here) serving the same records as runs shaped as
wandb's `Runs` query returns them: the first read, the number of requests, and the second read of
the ended sweep (its cache). References measured in the same run: Optuna's own
`study.trials_dataframe()` on the same study, reading the run files' raw bytes, and posting the same
GraphQL requests without W&B's client (the stub's own cost).

    python bench/analysis_load.py [--trials 800]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import struct
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import optuna
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic_params import random_params

from analysis.load import from_offline_runs, from_wandb_sweep, read_study
from dendrisweep.contract import TrialRecord
from dendrisweep.settings import defaults
from dendrisweep.sweep.space import search_space
from dendrisweep.sweep.spec import load_sweep
from dendrisweep.sweep.storage import RECORD_ATTR, open_storage
from tests.helpers import StubWandbServer, run_node

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 40


def synthetic(rng: random.Random, space: dict) -> tuple[dict, dict]:
    params = random_params(space, rng)
    acc = rng.uniform(0.8, 0.95)
    metrics = {"best_val_acc": acc, "test_acc": acc - 0.01, "val_loss": 0.3, "params": rng.randint(1500, 9000),
               "macs": rng.randint(20000, 90000), "dendrites_added": rng.randint(0, 4), "epochs_run": EPOCHS,
               "best_epoch": 30, "stop_reason": "PAI finished", "wall_seconds": 60.0}
    return params, metrics


def fill_study(url: str, n: int, spec, space: dict) -> None:
    rng = random.Random(0)
    study = optuna.create_study(storage=open_storage(url), study_name="bench", direction="maximize")
    study.set_user_attr("sweep", spec.raw)
    trials = []
    for i in range(n):
        params, metrics = synthetic(rng, space)
        config = {**defaults(), **{k: json.loads(v) if isinstance(v, str) and v.startswith("[") else v
                                   for k, v in params.items()}}
        record = TrialRecord.from_json({**metrics, "config": config, "data": {"source": "built-in", "digest": "abc"},
                                        "status": "finished", "run_id": f"run{i:05d}", "agent_seconds": 65.0,
                                        "trial_dir": f"/runs/bench/trials/trial-run{i:05d}",
                                        "objective": metrics["best_val_acc"]})
        attrs = {RECORD_ATTR: record.to_json()}
        trials.append(optuna.trial.create_trial(params=params, distributions=space, value=metrics["best_val_acc"],
                                                user_attrs=attrs, intermediate_values={e: 0.5 for e in range(EPOCHS)}))
    study.add_trials(trials)


# --- W&B run-file writer (the inverse of dendrisweep.wandb_files) -------------------------------
_BLOCK, _FULL, _FIRST, _MIDDLE, _LAST = 32768, 1, 2, 3, 4


def _frame(records: list[bytes]) -> bytes:
    data = bytearray(struct.pack("<4sHB", b":W&B", 0xBEE1, 0))
    for payload in records:
        first, rest = True, payload
        while True:
            room = _BLOCK - len(data) % _BLOCK
            if room < 7:
                data += b"\0" * room
                continue
            chunk, rest = rest[: room - 7], rest[room - 7:]
            kind = (_FULL if not rest else _FIRST) if first else (_LAST if not rest else _MIDDLE)
            data += struct.pack("<IHB", zlib.crc32(chunk, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF, len(chunk), kind)
            data += chunk
            first = False
            if not rest:
                break
    return bytes(data)


def write_offline_run(folder: Path, run_id: str, config: dict, history: list[dict], summary: dict) -> None:
    from wandb.proto import wandb_internal_pb2 as pb

    records = []
    run = pb.Record()
    run.run.run_id, run.run.project = run_id, "bench"
    for key, value in config.items():
        item = run.run.config.update.add()
        item.key, item.value_json = key, json.dumps({"value": value})
    records.append(run.SerializeToString())
    for step, row in enumerate(history):
        rec = pb.Record()
        for key, value in {**row, "_step": step}.items():
            item = rec.history.item.add()
            item.key, item.value_json = key, json.dumps(value)
        records.append(rec.SerializeToString())
    rec = pb.Record()
    for key, value in summary.items():
        item = rec.summary.update.add()
        item.key, item.value_json = key, json.dumps(value)
    records.append(rec.SerializeToString())
    rec = pb.Record()
    rec.exit.exit_code = 0
    records.append(rec.SerializeToString())
    run_dir = folder / f"offline-run-20260101_000000-{run_id}"
    run_dir.mkdir(parents=True)
    (run_dir / f"run-{run_id}.wandb").write_bytes(_frame(records))


def fill_offline_runs(folder: Path, n: int, space: dict) -> None:
    rng = random.Random(1)
    for i in range(n):
        params, metrics = synthetic(rng, space)
        history = [{"epoch": e, "train/acc": 0.8, "val/acc": 0.8, "val/loss": 0.4, "best_val_acc": 0.8,
                    "params": metrics["params"], "dendrites_added": 1, "lr": 0.001, "epoch_seconds": 1.0}
                   for e in range(1, EPOCHS + 1)]
        write_offline_run(folder, f"r{i:07d}", {**defaults(), **params}, history,
                          {**metrics, "status": "finished", "reason": "", "data_digest": "abc"})


def wandb_runs(n: int, space: dict) -> list[dict]:
    """The offline runs' records as W&B's server returns a sweep's runs."""
    rng = random.Random(1)
    runs = []
    for i in range(n):
        params, metrics = synthetic(rng, space)
        runs.append(run_node(f"r{i:07d}", {**defaults(), **params},
                             {**metrics, "status": "finished", "reason": "", "data_digest": "abc"}))
    return runs


def read_wandb_sweep(stub: StubWandbServer, cache: Path) -> tuple[float, int, object]:
    before = len(stub.requests)
    seconds, (df, _) = timed(lambda: from_wandb_sweep("stub-entity/proj/sw123", cache))  # type: ignore[misc]
    return seconds, len(stub.requests) - before, df


def replay(stub: StubWandbServer, requests: list[dict]) -> float:
    """The same GraphQL requests posted without W&B's client: the stub's and the socket's own cost."""
    import urllib.request

    started = time.perf_counter()
    for body in requests:
        post = urllib.request.Request(f"{stub.url}/graphql", json.dumps(body).encode(),
                                      {"Content-Type": "application/json"})
        with urllib.request.urlopen(post) as answer:
            answer.read()
    return time.perf_counter() - started


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=800)
    opts = parser.parse_args()
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_sweep(ROOT / "sweeps" / "kws_dendrites.yaml")
    space = search_space(spec)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'study.db'}"
        fill_study(url, opts.trials, spec, space)
        fill_offline_runs(Path(tmp) / "wandb", opts.trials, space)
        study_s, (df, _) = timed(lambda: read_study(url, "bench"))
        reference_s, _ = timed(lambda: optuna.load_study(study_name="bench", storage=url).trials_dataframe())
        offline_s, offline = timed(lambda: from_offline_runs(Path(tmp) / "wandb"))
        raw_s, _ = timed(lambda: [p.read_bytes() for p in (Path(tmp) / "wandb").glob("*/*.wandb")])
        stub = StubWandbServer(sweep_config=yaml.safe_dump(spec.raw), runs=wandb_runs(opts.trials, space))
        os.environ.update(stub.env(Path(tmp) / "home"))
        stub.sweep_state = "FINISHED"
        cloud_s, cloud_requests, cloud = read_wandb_sweep(stub, Path(tmp) / "cache")
        cached_s, cached_requests, _ = read_wandb_sweep(stub, Path(tmp) / "cache")
        replay_s = replay(stub, stub.requests[-cloud_requests - cached_requests:-cached_requests])
        stub.close()
    assert len(df) == len(offline) == len(cloud) == opts.trials and df["state"].eq("finished").all()
    print(f"{'source':<34}{'trials':>8}{'seconds':>10}{'target':>9}{'reference':>30}")
    print(f"{'Optuna study (SQLite) -> frame':<34}{len(df):>8}{study_s:>10.2f}{'< 2 s':>9}"
          f"{f'{study_s / reference_s:.2f}x trials_dataframe()':>30}")
    print(f"{'W&B offline runs -> frame':<34}{len(offline):>8}{offline_s:>10.2f}{'< 10 s':>9}"
          f"{f'{offline_s / raw_s:.0f}x reading the bytes':>30}")
    print(f"{'W&B sweep (public API) -> frame':<34}{len(cloud):>8}{cloud_s:>10.2f}{'':>9}"
          f"{f'{cloud_requests} requests; {cloud_s / replay_s:.1f}x posting them':>30}")
    print(f"{'  again, the sweep ended (cache)':<34}{len(cloud):>8}{cached_s:>10.2f}{'':>9}"
          f"{f'{cached_requests} requests (W&B client start, the sweep)':>30}")
    verdict = "meets" if study_s < 2 and offline_s < 10 else "MISSES"
    print(f"{verdict} both targets")


if __name__ == "__main__":
    main()
