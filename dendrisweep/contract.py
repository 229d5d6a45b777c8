"""The trial contract, declared once: what a trial writes in its folder, the states a trial ends in, and
`TrialRecord`, the one record of a trial that every part of dendrisweep reads and writes.

One direction: the trial writes its record (result.json; its W&B summary is the same record, flattened),
the agent completes it (`sweep/settle.py`: the final status, the objective, its own time) and stores it
whole in the study, and the analysis flattens it once into a frame row. A new metric is one line in
`TrialRecord`: result.json, the study, the sweep check and the frame all follow from its fields.

A trial's status:
- written by the trial itself: FINISHED, DIVERGED (the loss became NaN/inf; exit 0 so a sweep goes
  on), FAILED (any other error), STOPPED (its agent or W&B asked it to stop: SIGTERM or SIGINT; exit 0,
  which W&B's agent does not count as a failure), PREEMPTED (SIGTERM under a cluster scheduler; exit
  143, so W&B requeues it); KILLED is W&B's state of a run killed outright;
- decided by the agent: PRUNED (hyperband stopped it), TIMEOUT (--timeout-per-trial), INTERRUPTED
  (the agent was stopped), PREEMPTED (a signal from outside stopped it), LOST (its agent died;
  another agent found its heartbeat gone);
- in the study, not yet ended: RUNNING, QUEUED.
"""
from __future__ import annotations

import base64
import math
import secrets
import signal
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, TypeGuard

TRIAL_PREFIX = "trial-"
RESULT_FILE = "result.json"  # the trial's TrialRecord
HISTORY_FILE = "history.jsonl"  # one JSON line per epoch, flushed as it goes
MODEL_FILE = "best_model.pt"  # state dict + resolved config (weights_only loadable)
DEPLOYED_DIR = "deployed"  # the best model as a device runs it (setting deploy_metrics)
OUT_DIR_ENV = "DENDRISWEEP_OUT_DIR"  # default --out-directory, set by the agent
# Slurm's advance notice of a preemption (`#SBATCH --signal=B:USR1@120`, forwarded to the job's processes):
# a trial records itself preempted (W&B requeues it), an agent claims nothing more. A SIGTERM is a stop.
PREEMPTION_NOTICE = signal.SIGUSR1
DATA_CACHE_ENV = "DENDRISWEEP_DATA_CACHE"  # where built-in data is generated once for many trials, set by the agent


class Status(StrEnum):
    """How a trial ended (or that it has not): the values are the strings result.json, the study and W&B
    summaries hold, so a member is equal to, and written as, its text."""

    FINISHED = "finished"
    DIVERGED = "diverged"
    FAILED = "failed"
    STOPPED = "stopped"
    KILLED = "killed"
    PRUNED = "pruned"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    PREEMPTED = "preempted"
    LOST = "lost"
    RUNNING = "running"
    QUEUED = "queued"


# recorded and counted against the budget, never retried
FINAL_FAILURES = (Status.DIVERGED, Status.FAILED, Status.TIMEOUT)
RETRIED = (Status.INTERRUPTED, Status.PREEMPTED, Status.LOST)  # not the trial's fault: its parameters run again
EPOCH_CAP = "epoch cap"  # the stop_reason of a trial the `epochs` cap stopped before training was complete


def new_run_id() -> str:
    """A W&B-style run id (8 lowercase letters and digits); it also names the trial's folder."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def _metric(deployed: bool = False) -> Any:
    """A number the trial reports about its best model: a sweep may optimise it, the frame has its column.
    `deployed`: measured on the deployed model, named as the deployment pipeline names it (`Deployed`)."""
    return field(default=None, metadata={"metric": True, "deployed": deployed})


@dataclass(frozen=True)
class DataInfo:
    """The data a trial trained on: where from, its digest (the same data gives the same digest), sizes."""

    source: str | None = None
    digest: str | None = None
    classes: int | None = None
    sample_shape: list[int] | None = None
    layout: str | None = None  # the frame layout in words, and what decided it (data/layout.py)
    layout_warning: str | None = None  # set when the default decided and another standard layout fits too
    train: int | None = None
    val: int | None = None
    test: int | None = None


@dataclass
class TrialRecord:
    """One trial: who it is, what it trained, how it ended, what it measured, what it cost.

    Timings, in seconds, each with one meaning: `wall_seconds` the trial process's own (start to record),
    `train_seconds` its training loop, `compute_seconds` forward, backward and validation only,
    `agent_seconds` the agent's (process start to end, as the launcher saw it), `deploy_seconds` the
    deployed model's measurement (within `wall_seconds`).
    """

    run_id: str | None = None
    status: str = Status.RUNNING  # a Status; another program's own word is kept as it wrote it
    reason: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # the resolved settings (another program: its params)
    # about the best model (by validation accuracy), as train_trial.py measures it
    best_val_acc: float | None = _metric()
    test_acc: float | None = _metric()  # on the held-out split, which chose nothing
    val_loss: float | None = _metric()
    test_loss: float | None = _metric()
    params: int | None = _metric()  # PAI's count while training (dendrite scaffolding excluded)
    inference_params: int | None = _metric()  # the deployed model's
    macs: int | None = _metric()
    dendrites_added: int | None = _metric()  # what PAI really added (the setting `dendrites` is the switch)
    epochs_run: int | None = _metric()  # the setting `epochs` is the cap
    # the model a device runs (full int8 TFLite, scored by LiteRT on the held-out split), measured when the
    # trial deploys: with the setting `deploy_metrics`, and always in the Edge Impulse block
    tflite_int8_bytes: int | None = _metric(deployed=True)  # flash
    arena_bytes: int | None = _metric(deployed=True)  # peak activation memory: a RAM estimate
    tflite_int8_latency_ms: float | None = _metric(deployed=True)  # per sample, LiteRT's reference kernels
    tflite_int8_acc: float | None = _metric(deployed=True)
    deploy_seconds: float | None = None  # what the measurement cost (export, conversion, scoring)
    deploy_error: str | None = None  # why the model could not be measured (the trial still finished)
    best_epoch: int | None = None
    # the best model's class for each held-out example, and the true ones, in the split's order (pack()):
    # the verdict counts the test examples' own noise with them, paired across the trials that share a split
    test_predictions: str | None = None
    test_labels: str | None = None
    stop_reason: str = ""  # "PAI finished", "converged (...)" (the baseline), "dendrite budget reached (N)", EPOCH_CAP
    wall_seconds: float | None = None
    train_seconds: float | None = None
    compute_seconds: float | None = None
    agent_seconds: float | None = None
    trial_dir: str | None = None
    device: str | None = None
    device_name: str | None = None
    data: DataInfo = field(default_factory=DataInfo)
    versions: dict[str, str] = field(default_factory=dict)
    # set by the agent when it settles the trial
    objective: float | None = None  # the value the sampler was told (None: not counted)
    exit_code: int | None = None
    stderr_tail: str = ""  # the last lines of a trial that did not finish
    imputed: str | None = None  # metric.impute that gave a crashed run its objective
    extra: dict[str, Any] = field(default_factory=dict)  # what another program reported beyond these

    # -- files and stores ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The record as result.json and the study hold it: flat, unset fields left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                out.update({k: v for k, v in value.items() if k not in out})
            elif f.name == "data":
                data = {k: v for k, v in asdict(value).items() if v is not None}
                if data:
                    out["data"] = data
            elif f.name == "status":
                out["status"] = str(value)  # plain text: W&B writes an Enum member in a summary by its name
            elif value is not None and not (f.name in _OMIT_EMPTY and not value):
                out[f.name] = value
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> TrialRecord:
        """A record from result.json, the study or a W&B summary: known keys typed, the rest kept in
        `extra`. Never raises on a foreign program's odd values: the consumers check what they use."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)} - {"extra", "data"}
        record = cls(**{k: raw.pop(k) for k in list(raw) if k in known})
        record.status = as_status(record.status)
        data = raw.pop("data", None)
        if isinstance(data, Mapping):
            record.data = DataInfo(**{k: v for k, v in data.items() if k in _DATA_KEYS})
        # a W&B summary carries the data's identity flat (W&B shows nested values poorly)
        source, digest = raw.pop("data_source", None), raw.pop("data_digest", None)
        if source is not None or digest is not None:
            record.data = DataInfo(**{**asdict(record.data), "source": record.data.source or source,
                                      "digest": record.data.digest or digest})
        record.extra = {k: v for k, v in raw.items() if not k.startswith("_")}  # W&B's _runtime, _step ...
        return record

    def summary(self) -> dict[str, Any]:
        """The record as the run's W&B summary: flat (the config is the run's config; versions and the
        per-example predictions stay local)."""
        local = ("config", "data", "versions", "test_predictions", "test_labels")
        flat = {k: v for k, v in self.to_json().items() if k not in local}
        return {**flat, "data_digest": self.data.digest, "data_source": self.data.source}

    # -- reading ----------------------------------------------------------------------------------
    def value(self, key: str | None) -> float | None:
        """A reported number by name (a metric field, or another program's own key); None unless finite."""
        if key is None:
            return None
        value = getattr(self, key) if key in _FIELDS else self.extra.get(key)
        return float(value) if is_number(value) else None


_FIELDS = {f.name for f in fields(TrialRecord)} - {"extra"}
_DATA_KEYS = {f.name for f in fields(DataInfo)}
_OMIT_EMPTY = ("stderr_tail", "versions", "extra")
_STATUSES = {s.value for s in Status}
RESULT_METRICS = tuple(f.name for f in fields(TrialRecord) if f.metadata.get("metric"))
DEPLOY_METRICS = tuple(f.name for f in fields(TrialRecord) if f.metadata.get("deployed"))


def pack(classes: Any) -> str:
    """Class indices (any integer array) as compact text: base64 of little-endian int16."""
    import numpy as np

    return base64.b64encode(np.asarray(classes, dtype="<i2").tobytes()).decode("ascii")


def unpack(text: str) -> Any:
    """pack()'s text back to an int array."""
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype="<i2").astype(np.int64)


def as_status(value: Any) -> str:
    """A recorded status as its Status member; text that is none of ours kept as it is."""
    text = str(value)
    return Status(text) if text in _STATUSES else text


def is_number(value: Any) -> TypeGuard[int | float]:
    """A finite int or float (not a bool): what counts as a reported value."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
