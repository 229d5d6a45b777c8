"""Shared test helpers: the real scripts run as users run them, offline W&B, Edge Impulse-layout data,
Optuna's gRPC storage proxy."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from dendrisweep.data import COEFFICIENTS, LabelledArrays
from dendrisweep.deploy import tflite
from dendrisweep.wandb_files import OfflineRun, find_run_files, read_run_file

ROOT = Path(__file__).resolve().parents[1]
ODD_FRAMES = 49  # not Edge Impulse's usual 50: every pooling layer sees an odd length somewhere


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


def run_main(capfd: pytest.CaptureFixture[str], *args: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """What run_script(*args) answers, without starting a process: the script's main(argv) runs here, from `cwd`
    with `env` added; its output is read at the file descriptors (a child's or a C library's counts too) and its
    exit status is the interpreter's (an escaping exception: its traceback on stderr and 1). What a command may
    change for its whole process (cwd, argv, environment, signal handlers, logger levels, torch's seed) is put back."""
    import logging
    import signal
    import traceback

    from analysis.cli import main as analysis_main
    from dendrisweep.sweep.cli import main as agent_main
    from dendrisweep.trial.cli import main as trial_main

    scripts: dict[str, tuple[Callable[[list[str]], int], Path]] = {
        "train_trial.py": (trial_main, ROOT / "train_trial.py"), "agent.py": (agent_main, ROOT / "agent.py"),
        "-m analysis": (analysis_main, ROOT / "analysis" / "__main__.py")}
    script, argv = (" ".join(args[:2]), list(args[2:])) if args[0] == "-m" else (args[0], list(args[1:]))
    environ = dict(os.environ)
    handlers = {signum: signal.getsignal(signum) for signum in signal.valid_signals()}
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    levels = {logger: logger.level for logger in loggers}
    torch_seed = sys.modules["torch"].get_rng_state() if "torch" in sys.modules else None
    capfd.readouterr()  # only this command's output
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd or ROOT)
        main, path = scripts[script]
        mp.setattr(sys, "argv", [str(path), *argv])
        os.environ.update(env or {})
        try:
            returncode = main(argv)
        except SystemExit as exit_:
            if exit_.code is not None and not isinstance(exit_.code, int):
                print(exit_.code, file=sys.stderr)  # as the interpreter does
            returncode = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        except Exception:  # noqa: BLE001  what the process would have died of: its traceback, exit 1
            traceback.print_exc()
            returncode = 1
        finally:
            for key in set(os.environ) - set(environ):
                del os.environ[key]
            os.environ.update(environ)
            for signum, handler in handlers.items():
                if handler is not None and signal.getsignal(signum) != handler:
                    signal.signal(signum, handler)
            for logger, level in levels.items():
                logger.setLevel(level)
            if torch_seed is not None:
                sys.modules["torch"].set_rng_state(torch_seed)
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess([script, *argv], returncode, out, err)


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


def block_trial(cwd: Path) -> Path:
    """The one trial folder a block run started in `cwd` left (in ./trials: --out-directory is Edge Impulse's)."""
    (trial_dir,) = (cwd / "trials").glob("trial-*")
    return trial_dir


def assert_deployment_verified(out: Path, summary: dict[str, Any], test: LabelledArrays) -> None:
    """The two TFLite files Edge Impulse would otherwise make itself: written, int8 in and out, and
    scored here again (LiteRT reference kernels) to what the summary reports."""
    from ai_edge_litert.interpreter import Interpreter

    assert summary["split"] == "test" and summary["samples"] == len(test.y)
    assert summary["tflite_acc"] == summary["onnx_acc"] and summary["tflite_max_prob_diff"] <= 1e-4
    assert summary["tflite_acc"] - summary["tflite_int8_acc"] <= 0.015  # the default tolerance
    assert summary["tflite_bytes"] == (out / "model.tflite").stat().st_size and summary["arena_bytes"] > 0
    int8 = Interpreter(model_path=str(out / "model_quantized_int8_io.tflite"))
    assert int8.get_input_details()[0]["dtype"] == np.int8 and int8.get_output_details()[0]["dtype"] == np.int8
    again = tflite.score(out / "model_quantized_int8_io.tflite", test.x)[0]
    assert (again.argmax(1) == test.y).mean() == summary["tflite_int8_acc"]


def assert_tensorflow_2_19_scores_alike(out: Path, test: LabelledArrays, tensorflow_python: str) -> None:
    """Both shipped .tflite files, written by our TensorFlow, load in TensorFlow 2.19's own interpreter (Edge
    Impulse's version) with the same reference kernels and score as in LiteRT: float32 bit for bit; int8 the same
    answer on every sample, and its probabilities apart by more than one output step (1/256) in at most 1 % of
    values, by at most 4 steps (2.19's int8 softmax rounds a few values in a thousand differently)."""
    for name, step in (("model.tflite", 0.0), ("model_quantized_int8_io.tflite", 1 / 256)):
        ours, _, _, our_runtime = tflite.score(out / name, test.x)
        theirs, _, _, their_runtime = tflite.score(out / name, test.x, tensorflow_python)
        assert their_runtime == "tensorflow 2.19.0" and our_runtime.startswith("ai-edge-litert"), their_runtime
        np.testing.assert_array_equal(theirs.argmax(1), ours.argmax(1), err_msg=name)
        apart = np.abs(theirs - ours)
        assert apart.max() <= 4 * step + 1e-7 and (apart > step + 1e-7).mean() <= 0.01, (name, apart.max())


def odd_frames(split: LabelledArrays, frames: int = ODD_FRAMES) -> LabelledArrays:
    """The first `frames` MFCC frames of each sample: an odd count, where every pooling layer of the
    network sees an odd length somewhere (the case that broke Edge Impulse's int8 conversion)."""
    return LabelledArrays(np.ascontiguousarray(split.x[:, :frames * COEFFICIENTS]), split.y)


def record_of(trial: Any) -> Any:
    """The TrialRecord the agent stored on a study trial (the test fails if there is none)."""
    from dendrisweep.sweep import stored_record

    record = stored_record(trial)
    assert record is not None, trial.user_attrs
    return record


def finished(job: Any, n: int) -> Any:
    """A fake launcher's default answer: the run finished and logged `loss` = its parameter `x`."""
    from dendrisweep.sweep.settle import Observed

    return Observed(0, summary={"loss": job.params["x"]}, logged=True, seconds=0.01)


class FakeLauncher:
    """A launcher (sweep/launcher.py's port) that starts no process (the controller's loop, tested alone): each
    job is answered by `outcome(job, n)` (n: 1 for the first job it runs), after `during(job, files)` and after
    handing the caller `rows` as if the run logged them (a row it says to prune ends the run as pruned).
    `sessions` counts the sessions opened on it."""

    def __init__(self, outcome: Callable[[Any, int], Any] = finished, rows: list[dict[str, Any]] | None = None,
                 during: Callable[[Any, Any], None] | None = None) -> None:
        self.outcome, self.rows, self.during = outcome, rows or [], during
        self.jobs: list[tuple[Any, Any]] = []
        self.sessions = 0
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[None]:
        self.sessions += 1
        yield

    def where(self, worker: int) -> str | None:
        return None

    def launch(self, job: Any, files: Any, *, worker: int, on_row: Callable[[dict[str, Any]], bool],
               stop: threading.Event, timeout: float | None = None) -> Any:
        from dendrisweep.sweep.settle import Observed

        with self._lock:
            self.jobs.append((job, files))
            n = len(self.jobs)
        if self.during is not None:
            self.during(job, files)
        for row in self.rows:
            if on_row(row):
                return Observed(143, stopped=("pruned", "pruned after step 1 (hyperband)"))
        return self.outcome(job, n)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def grpc_proxy(backend: Any) -> str:
    """Optuna's gRPC storage proxy in front of `backend` (a storage), in a daemon thread; its grpc:// URL."""
    from optuna.storages import run_grpc_proxy_server

    port = free_port()
    threading.Thread(target=run_grpc_proxy_server, args=(backend,), kwargs={"host": "127.0.0.1", "port": port},
                     daemon=True).start()
    return f"grpc://127.0.0.1:{port}"


# --- W&B's sweeps engine as the reference for its parameter semantics ------------------------------------

DRAWS = 2000

# One spec per distribution (some twice: int and float q), written as a sweep file would write them.
CASES: dict[str, dict[str, Any]] = {
    "constant": {"value": 7},
    "constant_null": {"value": None},
    "categorical": {"values": ["a", "b", "c", "d"]},
    "categorical_w_probabilities": {"values": [1, 2, 3], "probabilities": [0.8, 0.1, 0.1]},
    "int_uniform": {"min": 1, "max": 6},
    "uniform": {"min": -2.0, "max": 3.0},
    "q_uniform": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 1},
    "q_uniform_float_q": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
    "q_uniform_default_q": {"distribution": "q_uniform", "min": 0, "max": 5},
    "log_uniform": {"distribution": "log_uniform", "min": -3, "max": 1},
    "q_log_uniform": {"distribution": "q_log_uniform", "min": 0, "max": 4, "q": 5},
    "log_uniform_values": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
    "inv_log_uniform": {"distribution": "inv_log_uniform", "min": 0, "max": 3},
    "inv_log_uniform_values": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 10.0},
    "q_log_uniform_values": {"distribution": "q_log_uniform_values", "min": 1, "max": 100, "q": 10},
    "normal": {"distribution": "normal", "mu": 1.0, "sigma": 2.0},
    "q_normal": {"distribution": "q_normal", "mu": 0, "sigma": 3, "q": 1},
    "log_normal": {"distribution": "log_normal", "mu": 0.5, "sigma": 0.7},
    "q_log_normal": {"distribution": "q_log_normal", "mu": 1.0, "sigma": 0.5, "q": 0.5},
    "beta": {"distribution": "beta", "a": 2.0, "b": 5.0},
    "q_beta": {"distribution": "q_beta", "a": 2, "b": 2, "q": 0.1},
}
CONTINUOUS = ["uniform", "log_uniform", "log_uniform_values", "inv_log_uniform", "inv_log_uniform_values", "normal",
              "log_normal", "beta"]


def engine_draws(spec: Mapping[str, Any], seed: int) -> list[Any]:
    """DRAWS values from the engine's random method (random_search.py samples with the global `random`)."""
    from dendrisweep.sweep.wandb_engine import import_sweeps
    from dendrisweep.sweep.wandb_params import WandbParam

    sweeps = import_sweeps()
    random.seed(seed)
    np.random.seed(seed)
    deprecated = WandbParam.from_spec("x", spec).deprecated  # its validation refuses these outright
    runs = sweeps.next_runs({"method": "random", "parameters": {"x": dict(spec)}}, [], validate=not deprecated, n=DRAWS)
    return [run.config["x"]["value"] for run in runs]


def _key(v: Any) -> Any:
    return round(float(v), 9) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else repr(v)


def _chi2_p(ours: list[Any], theirs: list[Any]) -> float:
    """Chi-squared test of two samples' value counts; categories seen fewer than 10 times are pooled."""
    a, b = Counter(map(_key, ours)), Counter(map(_key, theirs))
    rows: list[list[int]] = []
    rare = [0, 0]
    for k in set(a) | set(b):
        if a[k] + b[k] < 10:
            rare[0] += a[k]
            rare[1] += b[k]
        else:
            rows.append([a[k], b[k]])
    if sum(rare) >= 10 or (rows and sum(rare)):
        rows.append(rare)
    if len(rows) < 2:
        return 1.0  # one value only (a constant): the samples agree exactly
    return float(stats.chi2_contingency(np.array(rows).T)[1])


def p_value(name: str, ours: list[Any], theirs: list[Any]) -> float:
    if name in CONTINUOUS:
        return float(stats.ks_2samp(np.array(ours, float), np.array(theirs, float)).pvalue)
    return _chi2_p(ours, theirs)


# --- a stand-in for a W&B server's GraphQL endpoint ------------------------------------------------------------

def execute_notebook(env: dict[str, str]) -> list[Any]:
    """Run notebooks/analysis.ipynb top to bottom in a real kernel with `env` set; its code cells' outputs."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "notebooks" / "analysis.ipynb", as_version=4)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def run_node(run_id: str, config: dict[str, Any], summary: dict[str, Any], state: str = "finished",
             sweep: str = "sw123") -> dict[str, Any]:
    """A run as W&B's `Runs` query returns it: every field of wandb's own RunFragment (read from its query
    text, so a field wandb adds is noticed), config and summary as the JSON strings its server sends."""
    from wandb.apis.public.runs import RUN_FRAGMENT

    fields = re.findall(r"^\s{4}(\w+)", RUN_FRAGMENT, flags=re.M)
    known = {"id": run_id, "name": run_id, "displayName": run_id, "sweepName": sweep, "state": state,
             "config": json.dumps({k: {"value": v, "desc": None} for k, v in
                                   {**config, "_wandb": {"cli_version": "0.31.0"}}.items()}),
             "summaryMetrics": json.dumps(summary), "systemMetrics": "{}", "tags": [], "historyKeys": None,
             "user": {"name": "stub", "username": "stub"}, "historyLineCount": 0, "readOnly": False}
    return {"projectId": "1", **{f: known.get(f) for f in fields}}


class StubWandbServer:
    """A local HTTP stub of W&B's `/graphql` endpoint (a stub, not W&B: no W&B server is reachable here),
    answering the queries W&B's own client sends for what dendrisweep does with it: the viewer, a sweep's
    creation (`UpsertSweep`), and an agent's session (`SweepWithRuns`, `CreateAgent`, its heartbeats, which
    hand out `commands`). Every request is kept, so a test can check exactly what W&B's client asked."""

    def __init__(self, sweep_config: str = "method: random\n", commands: list[list[dict[str, Any]]] | None = None,
                 entity: str = "stub-entity", sweep_id: str = "sw123",
                 runs: list[dict[str, Any]] | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict[str, Any]] = []
        self.sweep_config, self.commands = sweep_config, list(commands or [])
        self.sweep_configs: dict[str, str] = {}  # other sweeps of the project by id (else sweep_config)
        self.entity, self.sweep_id = entity, sweep_id
        self.runs = list(runs or [])  # run_node()s: the sweep's runs, in W&B's order
        self.histories: dict[str, list[dict[str, Any]]] = {}  # run id -> its logged rows (run.history)
        self.artifacts: dict[str, dict[str, bytes]] = {}  # artifact collection -> its files (one version, v0)
        self.sweep_state: str | None = "RUNNING"  # None: W&B does not have the sweep
        self.status = 200  # another HTTP status: W&B refuses every request (401: the key)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path != "/graphql":
                    self.send_response(404)  # W&B's telemetry proxy: absent, so the client turns it off
                    self.end_headers()
                    return
                stub.requests.append(body)
                if stub.status != 200:
                    self.send_response(stub.status)
                    self.end_headers()
                    return
                out = json.dumps({"data": stub.answer(body.get("query", ""), body.get("variables") or {})}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self) -> None:  # an artifact's manifest and files (what W&B's storage serves)
                body = stub.blob(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        project = {"id": "1", "name": variables.get("projectName") or variables.get("project") or "proj",
                   "entity": {"id": "E1", "name": self.entity}}
        if "upsertSweep" in query:
            return {"upsertSweep": {"sweep": {"name": self.sweep_id, "project": project},
                                    "configValidationWarnings": []}}
        if "sweep(sweepName" in query:  # SweepWithRuns (W&B's agent) and GetSweep (its public API): both fields
            if self.sweep_state is None:
                return {"project": {"sweep": None}}
            return {"project": {"sweep": {
                "__typename": "Sweep", "id": "SW1", "name": variables.get("name") or self.sweep_id,
                "displayName": variables.get("name") or self.sweep_id,
                "method": "random", "state": self.sweep_state, "description": None,
                "config": self.sweep_configs.get(variables.get("name", ""), self.sweep_config),
                "createdAt": "2026-11-30T00:00:00", "heartbeatAt": None, "updatedAt": "2026-11-30T01:00:00",
                "runCount": len(self.runs), "runCountExpected": None, "earlyStopJobRunning": False,
                "bestLoss": None, "controller": None, "scheduler": None, "runs": {"edges": []}}}}
        if "query Run(" in query:  # one run, as wandb.Api().run() loads it
            found = [r for r in self.runs if r["name"] == variables.get("name")]
            return {"project": {"run": found[0] if found else None}}
        if "RunSampledHistory" in query:  # run.history(keys=...): the rows holding the asked keys
            keys = json.loads(variables["specs"][0])["keys"]
            rows = self.histories.get(variables.get("name", ""), [])
            return {"project": {"run": {"sampledHistory": [[{k: row[k] for k in keys if k in row}
                                                             for row in rows if all(k in row for k in keys)]]}}}
        if "ArtifactMembershipByName" in query:  # wandb.Api().artifact("E/P/NAME:ALIAS")
            return {"project": {"artifactCollectionMembership": self._membership(variables["name"].split(":")[0])}}
        if "FetchArtifactManifest" in query:  # the manifest's (presigned) URL
            return {"artifact": {"currentManifest": {"file": {"directUrl": f"{self.url}/blobs/{variables['id']}/"
                                                                            "manifest.json"}}}}
        if "GetArtifactMembershipFileUrls" in query:  # each file's (presigned) URL
            collection = variables["collection"]
            edges = [{"node": {"__typename": "File", "name": name,
                               "directUrl": f"{self.url}/blobs/{collection}/{name}"}}
                     for name in self.artifacts.get(collection, {})]
            return {"project": {"artifactCollection": {"__typename": "ArtifactSequence", "artifactMembership": {
                "files": {"pageInfo": {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False},
                          "edges": edges}}}}}
        if "query Runs(" in query:  # wandb's public `Runs`: a page of `perPage` after `cursor`, this sweep's runs
            wanted = json.loads(variables.get("filters") or "{}").get("$and", [{}])[0].get("sweep")
            runs = [r for r in self.runs if wanted in (None, r.get("sweepName"))]
            start, size = int(variables.get("cursor") or 0), int(variables.get("perPage") or 50)
            edges = [{"node": node, "cursor": str(start + i + 1)} for i, node in enumerate(runs[start:start + size])]
            return {"project": {"internalId": "P1", "runCount": len(runs), "readOnly": False, "runs": {
                "edges": edges, "pageInfo": {"endCursor": edges[-1]["cursor"] if edges else None,
                                             "hasNextPage": start + size < len(runs)}}}}
        if "createAgent" in query:
            return {"createAgent": {"agent": {"id": "agent-1"}}}
        if "agentHeartbeat" in query:
            commands = self.commands.pop(0) if self.commands else []
            return {"agentHeartbeat": {"agent": {"id": "agent-1"}, "commands": json.dumps(commands)}}
        if "viewer" in query:
            return {"viewer": {"id": "U1", "entity": self.entity, "username": "stub", "email": "stub@example.com",
                               "flags": "{}", "admin": False, "name": "stub", "deletedAt": None,
                               "apiKeys": {"edges": []}, "teams": {"edges": []}}}
        if "serverInfo" in query:
            return {"serverInfo": {"features": []}}
        return {}

    def _membership(self, collection: str) -> dict[str, Any] | None:
        """An artifact version as W&B's ArtifactMembershipFragment describes it (None: no such artifact)."""
        if collection not in self.artifacts:
            return None
        project = {"id": "UHJvamVjdDox", "internalId": "1", "name": "proj", "entity": {"name": self.entity}}
        sequence = {"__typename": "ArtifactSequence", "name": collection, "project": project}
        files = self.artifacts[collection]
        artifact = {"__typename": "Artifact", "id": collection, "artifactSequence": sequence, "versionIndex": 0,
                    "artifactType": {"name": "model"}, "description": None, "metadata": "{}",
                    "ttlDurationSeconds": -1, "ttlIsInherited": True, "tags": [], "historyStep": None,
                    "state": "COMMITTED", "size": sum(map(len, files.values())), "digest": collection,
                    "digestAlgorithm": "MANIFEST_MD5", "commitHash": "0", "fileCount": len(files),
                    "createdAt": "2026-11-30T00:00:00", "updatedAt": "2026-11-30T00:00:00"}
        return {"__typename": "ArtifactCollectionMembership", "id": collection, "versionIndex": 0,
                "createdAt": "2026-11-30T00:00:00", "aliases": [{"__typename": "ArtifactAlias", "id": "A1",
                                                                "alias": "best"}],
                "artifactCollection": sequence, "artifact": artifact}

    def blob(self, path: str) -> bytes | None:
        """/blobs/<collection>/<file> or its manifest.json (W&B's manifest format: each file's MD5 and size)."""
        _, _, collection, name = (path.split("?")[0].split("/", 3) + ["", "", "", ""])[:4]
        files = self.artifacts.get(collection, {})
        if name == "manifest.json":
            contents = {n: {"digest": base64.b64encode(hashlib.md5(b).digest()).decode(), "size": len(b)}
                        for n, b in files.items()}
            return json.dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                               "storagePolicyConfig": {"storageLayout": "V2"}, "contents": contents}).encode()
        return files.get(name)

    def called(self, operation: str) -> list[dict[str, Any]]:
        """The variables of every request whose query holds `operation`."""
        return [r.get("variables") or {} for r in self.requests if operation in r.get("query", "")]

    def env(self, home: Path) -> dict[str, str]:
        """The environment that points W&B's client at this stub, with a key and a home of its own."""
        home.mkdir(parents=True, exist_ok=True)
        return {"WANDB_BASE_URL": self.url, "WANDB_API_KEY": "0123456789abcdef0123456789abcdef01234567",
                "HOME": str(home), "WANDB_CONFIG_DIR": str(home / "config"), "WANDB_MODE": "offline"}

    def close(self) -> None:
        self.server.shutdown()


def cache_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder kept between runs in pytest's cache, or this run's own with the cache off (-p no:cacheprovider)."""
    cache = getattr(request.config, "cache", None)
    return cache.mkdir(name) if cache is not None else tmp_path_factory.mktemp(name)
