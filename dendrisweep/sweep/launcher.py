"""The launcher port: how a trial runs, apart from what it runs (a `Job`) and where its files go (`TrialFiles`).

Every trial starts through one: the agent's, the verdict's replicates and regenerate's retraining alike. A
caller holds the launcher's `session` while it launches, `launch`es each trial and gets back what was seen of
it (`Observed`); how the trial ended is decided afterwards, from that (settle.py). `launch.LocalLauncher` runs
each as a process on this machine, exactly as `wandb agent` would; a launcher for a cluster engine (Ray,
Kubernetes Jobs) implements the same three methods, and tests use one that starts nothing.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from dendrisweep.sweep.launch import Job, TrialFiles
from dendrisweep.sweep.settle import Observed


class Launcher(Protocol):
    """Starts trials from their job descriptions and reports what it saw of each."""

    def session(self) -> AbstractContextManager[object]:
        """Held while trials are launched: whatever they share (a cluster connection, a local service)."""

    def launch(self, job: Job, files: TrialFiles, *, worker: int, on_row: Callable[[dict[str, Any]], bool],
               stop: threading.Event, timeout: float | None = None) -> Observed:
        """Run one trial to its end. `worker`: which of the caller's concurrent slots runs it (0, 1, ...);
        `on_row` gets each row the trial logs as it arrives, and returning True prunes it; setting `stop`
        interrupts it; `timeout`: seconds it may run. Never raises for a trial's own failure."""

    def where(self, worker: int) -> str | None:
        """Where a worker's trials run, in a word for the progress bar; None when there is nothing to tell."""
