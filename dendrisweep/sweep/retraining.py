"""Retrain chosen configs now, in parallel, each launched exactly as the agent launches a sweep's trials
(launch.py: the config in the file `wandb agent` would write, the same environment and trial folder)
and settled the same way (settle.py). `analysis regenerate` retrains its chosen pair through here.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dendrisweep.contract import FINISHED, TrialRecord, new_run_id
from dendrisweep.errors import UsageError
from dendrisweep.sweep.launch import Job, TrialFiles, launch
from dendrisweep.sweep.settle import Objective, settle
from dendrisweep.sweep.spec import DEFAULT_COMMAND

TRAIN_TRIAL = Path(__file__).resolve().parents[2] / "train_trial.py"
GROUP = "regenerate"


def retrain(configs: Mapping[str, dict[str, Any]], out_dir: Path, data_dir: Path | None,
            project: str) -> dict[str, TrialRecord]:
    """Train each named config with train_trial.py (on `data_dir`, else the built-in data), all at once,
    showing epochs as they complete; each in `out_dir/<name>/`, its W&B run in `project`. Returns the
    finished trials' records; a trial that does not finish is a UsageError naming it and its stderr."""
    threads = max(1, (os.cpu_count() or 1) // len(configs))
    command = (*DEFAULT_COMMAND[:3], *(["--data-directory", str(data_dir)] if data_dir else []))
    lock, stop = threading.Lock(), threading.Event()
    with tqdm(unit="epoch", desc="retraining " + " + ".join(configs)) as bar:  # no total: each ends when done
        def progress(row: dict[str, Any]) -> bool:
            with lock:
                bar.update(1)
            return False  # never prune

        def train(name: str) -> tuple[TrialFiles, TrialRecord]:
            files = TrialFiles((out_dir / name).resolve(), GROUP, new_run_id())
            job = Job(command, str(TRAIN_TRIAL), dict(configs[name]), GROUP, project)
            started = TrialRecord(run_id=files.run_id, trial_dir=str(files.trial_dir), config=job.params)
            observed = launch(job, files, on_row=progress, stop=stop, threads=threads)
            return files, settle(started, observed, Objective("best_val_acc")).record

        with ThreadPoolExecutor(max_workers=len(configs)) as pool:
            done = dict(zip(configs, pool.map(train, configs), strict=True))
    for name, (files, record) in done.items():
        if record.status != FINISHED:
            raise UsageError(f"retraining the {name} model failed ({record.reason or record.status}); see "
                             f"{files.stderr}")
    return {name: record for name, (_, record) in done.items()}
