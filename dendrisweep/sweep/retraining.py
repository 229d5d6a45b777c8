"""Retrain chosen configs now, in parallel, each launched exactly as the agent launches a sweep's trials
(through a launcher: by default launch.py's, with the config in the file `wandb agent` would write, the
same environment and trial folder) and settled the same way (settle.py). `analysis regenerate` retrains
its chosen pair through here.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dendrisweep.contract import Status, TrialRecord, new_run_id
from dendrisweep.errors import UsageError
from dendrisweep.sweep.launch import Job, LocalLauncher, TrialFiles
from dendrisweep.sweep.launcher import Launcher
from dendrisweep.sweep.settle import Objective, settle
from dendrisweep.sweep.spec import DEFAULT_COMMAND

TRAIN_TRIAL = Path(__file__).resolve().parents[2] / "train_trial.py"
GROUP = "regenerate"


def retrain(configs: Mapping[str, dict[str, Any]], out_dir: Path, data_dir: Path | None,
            project: str, launcher: Launcher | None = None, deploy: bool = False) -> dict[str, TrialRecord]:
    """Train each named config with train_trial.py (on `data_dir`, else the built-in data), all at once,
    through `launcher` (default: processes here, sharing out the cores), showing epochs as they complete;
    each in `out_dir/<name>/`, its W&B run in `project`. Returns the finished trials' records; a trial that
    does not finish is a UsageError naming it and its stderr. `deploy`: each also deploys its best model under
    its name (train_trial.py --deploy-as), the result in its record and deployed/ folder."""
    # A few trials: a W&B service started here for them to share would cost about what it saves them.
    launcher = launcher if launcher is not None else LocalLauncher(len(configs), share_wandb=False)
    command = (*DEFAULT_COMMAND[:3], *(["--data-directory", str(data_dir)] if data_dir else []))
    lock, stop = threading.Lock(), threading.Event()
    with launcher.session(), tqdm(unit="epoch", desc="retraining " + " + ".join(configs)) as bar:
        # the bar has no total: each trial ends when done
        def progress(row: dict[str, Any]) -> bool:
            with lock:
                bar.update(1)
            return False  # never prune

        def train(worker: int, name: str) -> tuple[TrialFiles, TrialRecord]:
            files = TrialFiles((out_dir / name).resolve(), GROUP, new_run_id())
            job = Job((*command, *(["--deploy-as", name] if deploy else [])), str(TRAIN_TRIAL), dict(configs[name]),
                      GROUP, project)
            started = TrialRecord(run_id=files.run_id, trial_dir=str(files.trial_dir), config=job.params)
            observed = launcher.launch(job, files, worker=worker, on_row=progress, stop=stop)
            return files, settle(started, observed, Objective("best_val_acc")).record

        with ThreadPoolExecutor(max_workers=len(configs)) as pool:
            done = dict(zip(configs, pool.map(train, range(len(configs)), configs), strict=True))
    for name, (files, record) in done.items():
        if record.status != Status.FINISHED:
            raise UsageError(f"retraining the {name} model failed ({record.reason or record.status}); see "
                             f"{files.stderr}")
    return {name: record for name, (_, record) in done.items()}
