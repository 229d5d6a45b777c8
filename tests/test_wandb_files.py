"""Reading what a program logs to W&B from its run file, while it runs (no server): the basis for
scoring any W&B program a sweep launches."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dendrisweep.wandb_files import RunFileFollower, read_run_file

PROGRAM = """
import wandb
run = wandb.init(config={"lr": 0.1})
for step in range(ROWS):
    run.log({"loss": 1.0 / (step + 1), "acc": step / 100})
run.summary["acc"] = 0.99
run.finish()
"""


def test_a_follower_reads_a_growing_run_file_to_the_same_record_as_a_full_read(tmp_path: Path) -> None:
    rows = 600
    (tmp_path / "program.py").write_text(PROGRAM.replace("ROWS", str(rows)))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_RUN_ID": "follow01",
           "WANDB_SILENT": "true"}
    process = subprocess.Popen([sys.executable, "program.py"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
    follower = RunFileFollower(tmp_path / "wandb", "follow01")
    seen: list[dict] = []
    while process.poll() is None:
        seen += follower.poll()  # W&B flushes its file every few seconds: rows arrive in batches
        time.sleep(0.05)
    assert process.returncode == 0
    deadline = time.monotonic() + 60  # the service closes the file a moment after the program exits
    while follower.run.exit_code is None and time.monotonic() < deadline:
        seen += follower.poll()
        time.sleep(0.2)
    assert [row["loss"] for row in seen] == [1.0 / (step + 1) for step in range(rows)]  # each row once, in order
    assert follower.run.summary["acc"] == 0.99 and follower.run.exit_code == 0 and follower.run.config["lr"] == 0.1
    full = read_run_file(follower.path)
    assert full.history == seen and full.summary == follower.run.summary and full.run_id == "follow01"


def test_a_follower_before_the_file_exists_returns_nothing(tmp_path: Path) -> None:
    follower = RunFileFollower(tmp_path / "wandb", "absent01")
    assert follower.poll() == [] and follower.path is None and follower.run.exit_code is None
