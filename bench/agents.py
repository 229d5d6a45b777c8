"""Shared by the reliability benches: start real agent.py processes on one study, and report its audit."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dendrisweep.sweep.audit import Audit  # noqa: E402

SEARCH = {"learning_rate": {"distribution": "log_uniform_values", "min": 0.001, "max": 0.02},
          "max_dendrites": {"values": [1, 2, 4]}, "dropout": {"min": 0.0, "max": 0.5}}


def write_sweep(path: Path, program: str, run_cap: int, fixed: dict[str, Any], flags: Sequence[str] = ()) -> Path:
    """A W&B sweep YAML over SEARCH plus `fixed` values, for `program` (flags go before ${args})."""
    sweep = {"program": program, "method": "bayes", "metric": {"name": "best_val_acc", "goal": "maximize"},
             "run_cap": run_cap, "command": ["${env}", "${interpreter}", "${program}", *flags, "${args}"],
             "parameters": {**SEARCH, **{k: {"value": v} for k, v in fixed.items()}}}
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def start_agent(sweep: Path, storage: str, study: str, runs_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    """One agent, as on its own machine: its own runs folder, the shared study; output to a log file."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    log = (runs_dir / "agent.log").open("ab")
    command = [sys.executable, str(ROOT / "agent.py"), str(sweep), "--storage", storage, "--study", study,
               "--runs-dir", str(runs_dir), "--no-progress", *args]
    return subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            env={**os.environ, "WANDB_SILENT": "true"})


def agent_error_lines(runs_dirs: Sequence[Path]) -> list[str]:
    """Tracebacks (their last line) and error lines in the agents' logs; a SIGKILLed agent leaves none."""
    found = []
    for log in (d / "agent.log" for d in runs_dirs):
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        for n, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = next((m for m in range(n + 1, len(lines)) if not lines[m].startswith((" ", "\t"))), n)
                found.append(f"{log}: {lines[end]}")
            elif "agent.py: error" in line:
                found.append(f"{log}: {line}")
    return found


def agent_errors(runs_dirs: Sequence[Path]) -> int:
    return len(agent_error_lines(runs_dirs))


def audit_rows(audit: Audit) -> list[tuple[str, int]]:
    """The audit as table rows, in the order a reader checks them."""
    return [("trials in the study", audit.trials), ("completed", audit.complete),
            ("settled (budget)", audit.settled), ("lost (worker killed), FAIL + reason", audit.lost),
            ("  of which retried", audit.retried), ("  lost and not retried", audit.lost_not_retried),
            ("failed without a reason", audit.failed_without_reason),
            ("duplicate run ids", audit.duplicate_run_ids), ("trials re-run twice", audit.duplicate_retries),
            ("completed without result.json", audit.complete_without_files),
            ("finished result.json with no trial", audit.files_without_trial),
            ("still RUNNING/WAITING at the end", audit.still_running), ("over budget", audit.over_budget)]


def print_table(title: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """A Markdown table: one row per check, one column per storage backend."""
    print(f"\n{title}\n")
    print("| check | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, values in rows:
        print(f"| {name} | " + " | ".join(str(v) for v in values) + " |")
