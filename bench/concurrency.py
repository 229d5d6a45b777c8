"""Concurrency: 4 agents on one study, 100 trials, on SQLite and on PostgreSQL, each directly and through
Optuna's gRPC storage proxy (`--storage grpc://host:port`): 0 duplicates, 0 lost, 0 errors.

Each agent is its own process with its own runs folder (as on separate machines); they share only the
study database (or the proxy in front of it, started here on loopback as `optuna.storages.
run_grpc_proxy_server` runs on a cluster's head node). Trials are tests/programs/scripted_trial.py,
which speaks train_trial.py's protocol in a tenth of a second, so the storage and the agents'
bookkeeping are what is under load (the sampler is the sweep's real default). PostgreSQL runs when
--postgres or DENDRISWEEP_TEST_POSTGRES names a server.

    python bench/concurrency.py [--agents 4] [--trials 100] [--postgres postgresql://u:p@host/db] [--no-proxy]
"""
from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import optuna
from agents import agent_errors, audit_rows, print_table, start_agent, write_sweep
from optuna.storages import run_grpc_proxy_server

from dendrisweep.sweep.audit import Audit, audit_study
from dendrisweep.sweep.storage import open_storage, quiet_optuna


def proxy(storage: str) -> str:
    """Optuna's gRPC storage proxy in front of `storage`, on a free loopback port; its grpc:// URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = open_storage(storage)
    threading.Thread(target=run_grpc_proxy_server, args=(backend,), kwargs={"host": "127.0.0.1", "port": port},
                     daemon=True).start()
    return f"grpc://127.0.0.1:{port}"


def run(storage: str, agents: int, trials: int, scratch: Path, via_proxy: bool = False) -> list[object]:
    study = f"concurrency-{uuid.uuid4().hex[:8]}"
    sweep = write_sweep(scratch / f"{study}.yaml", "tests/programs/scripted_trial.py", trials, {})
    folders = [scratch / study / f"machine{i}" for i in range(agents)]
    url = proxy(storage) if via_proxy else storage
    started = time.perf_counter()
    procs = [start_agent(sweep, url, study, folder) for folder in folders]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - started
    audit = audit_study(optuna.load_study(study_name=study, storage=storage),
                        [f / study / "trials" for f in folders], budget=trials)
    errors = agent_errors(folders) + sum(code != 0 for code in codes)
    busy = sum(1 for f in folders if any((f / study / "trials").glob("trial-*")))
    return [*(v for _, v in audit_rows(audit)), errors, busy, f"{wall:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--postgres", default=os.environ.get("DENDRISWEEP_TEST_POSTGRES"))
    parser.add_argument("--no-proxy", action="store_true", help="only the direct connections")
    opts = parser.parse_args()
    quiet_optuna()
    columns, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        backends = [("SQLite", f"sqlite:///{Path(tmp) / 'study.db'}")]
        if opts.postgres:
            backends.append(("PostgreSQL", opts.postgres))
        for name, storage in backends:
            for via_proxy in (False,) if opts.no_proxy else (False, True):
                columns.append(f"{name} via gRPC proxy" if via_proxy else name)
                results.append(run(storage, opts.agents, opts.trials, Path(tmp), via_proxy))
    names = [name for name, _ in audit_rows(Audit())]
    names += ["agent errors (tracebacks, error lines, non-zero exits)", "agents that ran trials", "wall seconds"]
    print_table(f"{opts.agents} agents, {opts.trials} trials per study", columns,
                [(name, [r[i] for r in results]) for i, name in enumerate(names)])


if __name__ == "__main__":
    main()
