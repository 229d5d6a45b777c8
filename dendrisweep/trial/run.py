"""One trial, end to end: config -> data -> model -> train -> result.json + best model + W&B run.

Outcomes are recorded, never lost: `finished` (with deploy_metrics, also when its deployed model could
not be measured: `deploy_error` says why); `diverged` (the loss went NaN/inf: exit 0 so a sweep goes on);
`failed` (any other error: exit 1, reason in the run and in result.json); `stopped` (its
agent's SIGTERM, or W&B's SIGINT when the sweep or the UI stops the run: the best model so far is
measured and recorded, exit 0, which W&B's agent does not count as a failure, under a cluster scheduler
too); `preempted` (Slurm's notice, SIGUSR1, or a SIGTERM with --preemptible: the W&B run is marked
preempting and the process exits 143, so W&B requeues it). Bad input never gets this far: it is a
UsageError, one line on stderr and exit 2, before any folder or run is created.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dendrisweep import __version__, device, pai
from dendrisweep.contract import (
    DEPLOY_METRICS,
    DEPLOYED_DIR,
    HISTORY_FILE,
    MODEL_FILE,
    PREEMPTION_NOTICE,
    RESULT_FILE,
    TRIAL_PREFIX,
    DataInfo,
    Status,
    TrialRecord,
    new_run_id,
    pack,
)
from dendrisweep.data import Dataset
from dendrisweep.deploy.pipeline import Deployed, Policy, deploy
from dendrisweep.edge_impulse.runtime import write_block_output, write_summary
from dendrisweep.errors import ExportError, UsageError
from dendrisweep.files import write_atomic
from dendrisweep.measure import count_macs, count_parameters
from dendrisweep.models import build_model
from dendrisweep.schedule import cap_falls_short
from dendrisweep.trial import checkpoint
from dendrisweep.trial.options import TrialOptions
from dendrisweep.trial.tracking import logs_model, start_run
from dendrisweep.trial.trainer import (
    Diverged,
    EpochRecord,
    Stopped,
    TrainResult,
    predict,
    score,
    strategy_for,
    train,
)

PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM  # non-zero: W&B requeues a preempted run, our agent re-runs it
# After a stop request the process wraps up (test score, checkpoint, W&B) and must be gone within this
# time even if W&B's service is gone (it dies with a SIGKILLed agent): under W&B's agent, which SIGKILLs
# 30 s after its SIGTERM (WANDB_AGENT_KILL_DELAY), and under ours (launch.TERM_GRACE_SECONDS).
EXIT_GRACE_SECONDS = 25


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "dendrisweep": __version__}
    for package in ("torch", "perforatedai", "wandb", "numpy"):
        versions[package] = metadata.version(package)
    return versions


def _make_trial_dir(out_directory: Path, run_id: str) -> Path:
    trial_dir = (out_directory / f"{TRIAL_PREFIX}{run_id}").resolve()
    try:
        trial_dir.mkdir(parents=True)
    except FileExistsError:
        raise UsageError(f"trial folder {trial_dir} already exists; use a new run id") from None
    except OSError as exc:
        raise UsageError(f"cannot create trial folder in {out_directory} ({exc.strerror or exc})") from None
    return trial_dir


def _measured(result: TrainResult, data: Dataset) -> dict[str, Any]:
    """The final numbers of a finished trial (all about the best model, not the last one), scored on
    the device it trained on."""
    best = result.best
    measured = {"best_val_acc": best.val_acc, "best_epoch": best.epoch, "val_loss": best.val_loss,
                "params": best.params, "dendrites_added": best.dendrites, "epochs_run": result.epochs_run,
                "stop_reason": result.stop_reason, "train_seconds": result.loop_seconds,
                "compute_seconds": result.compute_seconds}
    if data.test is not None:
        measured["test_loss"], measured["test_acc"] = score(best.model, data.test)
        measured["test_predictions"], measured["test_labels"] = pack(predict(best.model, data.test)), pack(data.test.y)
    return measured


def baseline_comparison(config: Mapping[str, Any], data: Dataset, precision: device.Precision,
                        dendritic: Mapping[str, Any], deadline: float | None) -> str:
    """The same network without dendrites, trained on the same seed and data, beside the dendritic one:
    one run each, so the table says it is no verdict."""
    plain = {**config, "dendrites": False}
    torch.manual_seed(plain["seed"])
    strategy = strategy_for(plain)
    model = strategy.prepare(build_model(plain, data.shape), precision.device)
    baseline = _measured(train(model, data, plain, strategy, lambda record: None, precision, deadline), data)
    rows = [(key, dendritic.get(key), baseline.get(key))
            for key in ("test_acc", "best_val_acc", "params", "dendrites_added", "epochs_run")]
    lines = ["One run each, same seed and data (a first look, not a verdict: `python -m analysis verdict` "
             "compares seeds with intervals):", f"  {'':<14}{'dendritic':>12}{'baseline':>12}"]
    lines += [f"  {key:<14}{_cell(d):>12}{_cell(b):>12}" for key, d, b in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _sizes(inference: nn.Module, data: Dataset) -> dict[str, Any]:
    """What the deployed model costs, measured on its CPU copy."""
    return {"inference_params": count_parameters(inference),
            "macs": count_macs(inference, torch.zeros(1, *data.shape.sample))}


def _device_metrics(deployed: Deployed) -> dict[str, Any]:
    """The record's metrics of the deployed model, which carry the pipeline's names."""
    return {name: getattr(deployed, name) for name in DEPLOY_METRICS}


def deployment_policy(config: Mapping[str, Any], options: TrialOptions) -> Policy | None:
    """How a trial deploys its best model into its deployed/ folder, if it does: as `analysis regenerate` asked
    (--deploy-as NAME: its names, int8 gated at int8_tolerance_pp), or measured only (setting deploy_metrics)."""
    if options.deploy_as:
        return Policy.regenerate(options.deploy_as, config["int8_tolerance_pp"])
    return Policy.measure() if config["deploy_metrics"] else None


def deployment_metrics(trained: nn.Module, inference: nn.Module, data: Dataset, out_dir: Path,
                       policy: Policy) -> dict[str, Any]:
    """The best model as a device runs it: one pass through the deployment pipeline into `out_dir`, the whole
    result saved there (Deployed.save: what regenerate reads back), and what it cost. A model the chain
    cannot convert, or whose files do not behave like it (ExportError), is a measurement that failed, not a
    trial: the metrics stay None, `deploy_error` says why, and the trial still finishes with its training
    metrics, so a sweep goes on."""
    started = time.perf_counter()
    try:
        deployed = deploy(trained, inference, data, out_dir, policy)
    except ExportError as exc:
        print(f"train_trial.py: warning: the deployed model could not be measured: {exc}", file=sys.stderr)
        measured: dict[str, Any] = {"deploy_error": f"ExportError: {exc}"}
    else:
        deployed.save(out_dir)
        measured = _device_metrics(deployed)
    return {**measured, "deploy_seconds": time.perf_counter() - started}


def data_info(data: Dataset) -> DataInfo:
    return DataInfo(source=data.source, digest=data.digest, classes=data.num_classes,
                    sample_shape=list(data.shape.sample), train=len(data.train.y), val=len(data.val.y),
                    test=len(data.test.y) if data.test is not None else 0)


class TrialRecorder:
    """Writes what a trial produces, as it produces it: history.jsonl, W&B, and its TrialRecord
    (result.json, and the W&B summary)."""

    def __init__(self, trial_dir: Path, run: Any, config: Mapping[str, Any], data: Dataset) -> None:
        self.trial_dir, self.run, self.started = trial_dir, run, time.time()
        self.history_file = (trial_dir / HISTORY_FILE).open("a", encoding="utf-8")
        self.record = TrialRecord(run_id=run.id, trial_dir=str(trial_dir), config=dict(config), data=data_info(data),
                                  versions=package_versions())

    def epoch(self, record: EpochRecord) -> None:
        metrics = record.metrics()
        self.history_file.write(json.dumps(metrics) + "\n")
        self.history_file.flush()
        self.run.log(metrics)
        print(f"epoch {record.epoch:3d}  train_acc {record.train_acc:.4f}  val_acc {record.val_acc:.4f}  "
              f"dendrites {record.dendrites}  params {record.params}  {record.epoch_seconds:.2f}s", flush=True)

    def record_now(self, status: str, reason: str, measured: Mapping[str, Any] | None = None) -> None:
        """Write result.json now (atomically): the local record never waits for W&B."""
        self.record = replace(self.record, **(measured or {}), status=status, reason=reason,
                              wall_seconds=time.time() - self.started)
        write_atomic(self.trial_dir / RESULT_FILE, json.dumps(self.record.to_json(), indent=2))

    def finish(self, status: str, reason: str, measured: Mapping[str, Any], exit_code: int) -> None:
        self.history_file.close()
        # The local record first: it must survive even if W&B is gone (its service died with an agent).
        self.record_now(status, reason, measured)
        try:
            self.run.summary.update(self.record.summary())
            if logs_model(self.record.config.get("log_model", "auto"), self.run.offline):
                self._log_model()
            self.run.finish(exit_code=exit_code)
        except Exception as exc:  # noqa: BLE001  result.json already holds everything
            print(f"warning: could not finish the W&B run ({type(exc).__name__}: {exc})", file=sys.stderr)


    def _log_model(self) -> None:
        """The best model and its record as one W&B model artifact (what regenerate downloads)."""
        import wandb

        model = self.trial_dir / MODEL_FILE
        if not model.is_file():  # failed before a best model existed: nothing to log
            return
        artifact = wandb.Artifact(f"model-{self.run.id}", type="model", metadata=self.record.summary())
        artifact.add_file(str(model))
        artifact.add_file(str(self.trial_dir / RESULT_FILE))
        self.run.log_artifact(artifact, aliases=["best"])


EXPORT_RESERVE_SECONDS = 180.0  # kept from Edge Impulse's time limit for export and the gate: ~4x what the
# two TFLite conversions, scoring and the ONNX checks take on 2 CPU cores (bench/deploy.py: ~21 s a conversion)


def training_deadline(options: TrialOptions, now: float | None = None) -> float | None:
    """When training must stop (time.perf_counter()) so the block still exports and verifies its model within
    Edge Impulse's maxTrainingTimeSeconds (train_input.json); None without one."""
    limit = options.info.get("maxTrainingTimeSeconds") if options.edge_impulse else None
    if not isinstance(limit, (int, float)) or limit <= 0:
        return None
    return (time.perf_counter() if now is None else now) + max(limit - EXPORT_RESERVE_SECONDS, limit * 0.25)


def preempts(signum: int, options: TrialOptions) -> bool:
    """A preemption, not a stop: Slurm's notice (SIGUSR1), or a SIGTERM where --preemptible says the scheduler
    preempts with SIGTERM. A plain SIGTERM is W&B's agent or ours stopping the run (hyperband, the UI's Stop),
    with or without a cluster scheduler around it."""
    return signum == PREEMPTION_NOTICE or (signum == signal.SIGTERM and options.preemptible)


def _stop_handler(recorder: TrialRecorder, options: TrialOptions) -> Any:
    """On SIGTERM, SIGINT or SIGUSR1: record the trial at once (stopped, or preempted), make sure the process
    ends within a grace period even if W&B's service is gone, then unwind training, which keeps the best
    model measured so far."""
    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if preempts(signum, options):
            stop = Stopped(Status.PREEMPTED, f"preempted ({name} from the cluster scheduler); W&B requeues it",
                           PREEMPTED_EXIT_CODE)
            with contextlib.suppress(Exception):  # W&B offline, or its service gone: the record still says it
                recorder.run.mark_preempting()
        else:
            stop = Stopped(Status.STOPPED, f"stopped by {name} (its agent, or W&B, asked the run to stop)", 0)
        for signum_ in STOP_SIGNALS:  # one record: a second signal during the wrap-up changes nothing
            signal.signal(signum_, signal.SIG_IGN)
        recorder.record_now(stop.status, stop.reason)
        deadline = threading.Timer(EXIT_GRACE_SECONDS, os._exit, (stop.exit_code,))
        deadline.daemon = True
        deadline.start()
        raise stop
    return on_signal


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, PREEMPTION_NOTICE)


def run_trial(config: Mapping[str, Any], data: Dataset, options: TrialOptions, precision: device.Precision) -> int:
    """Train and record one trial on `precision.device` (checked by the command line before anything is
    written); returns the process exit code."""
    where = precision.device
    torch.manual_seed(config["seed"])
    model = build_model(config, data.shape)  # a bad shape is still a UsageError here
    run_id = os.environ.get("WANDB_RUN_ID") or new_run_id()
    trial_dir = _make_trial_dir(options.out_directory, run_id)  # the last check of the input: bad ones end above
    short = cap_falls_short(config)
    if short is not None:  # small caps stay allowed (tests, demonstrations); the result will say "epoch cap"
        print(f"train_trial.py: warning: the epoch cap may stop this trial before PAI finishes: {short}",
              file=sys.stderr)
    wandb_dir = Path(os.environ.get("WANDB_DIR") or ".").resolve()
    recorder = TrialRecorder(trial_dir, start_run(options.wandb_project, config, run_id, wandb_dir),
                             config, data)
    layout, layout_warning = options.layout
    recorder.record = replace(recorder.record, device=str(where), device_name=device.name(where),
                              data=replace(recorder.record.data, layout=layout or None, layout_warning=layout_warning))
    handler = _stop_handler(recorder, options)
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    status: str = Status.FAILED  # then whatever ended the trial: a Stopped carries its own
    reason, measured, exit_code = "", {}, 1
    deployed: Deployed | None = None  # what a block run shipped
    try:
        with pai.working_directory(trial_dir):
            strategy = strategy_for(config)
            deadline = training_deadline(options)  # one budget for everything the block trains
            result = train(strategy.prepare(model, where), data, config, strategy, recorder.epoch, precision,
                           deadline)
            measured = _measured(result, data)
            checkpoint.save(trial_dir / MODEL_FILE, result.best.model, config, data.shape, result.best.dendrites)
            # Export and its gates work on a CPU copy: the checkpoint, rebuilt on the CPU, when training ran elsewhere
            best = result.best.model if where.type == "cpu" else checkpoint.load(trial_dir / MODEL_FILE)[0]
            inference = strategy.inference_model(best)
            measured.update(_sizes(inference, data))
            if result.stopped is not None:  # the best model so far is measured and kept; nothing is shipped
                raise result.stopped
            if options.block_output is not None:  # a block's deployment is its trial's measurement: one conversion
                started = time.perf_counter()
                shipped = Policy.block(config["int8_tolerance_pp"], ships_int8=options.info.get("convertInt8", True))
                deployed = write_block_output(options.block_output, trial_dir / DEPLOYED_DIR,
                                              best, inference, data, shipped)
                measured.update(_device_metrics(deployed), deploy_seconds=time.perf_counter() - started)
                if config["compare_baseline"] and config["dendrites"]:
                    print(baseline_comparison(config, data, precision, measured, deadline))
            elif (policy := deployment_policy(config, options)) is not None:
                measured.update(deployment_metrics(best, inference, data, trial_dir / DEPLOYED_DIR, policy))
        status, exit_code = Status.FINISHED, 0
    except Diverged as exc:  # recorded, and the sweep goes on; a block has no model to hand over: a failure
        status, reason, exit_code = Status.DIVERGED, str(exc), 1 if options.edge_impulse else 0
        if options.edge_impulse:
            print(f"train_trial.py: error: training diverged ({exc}): no model for Edge Impulse; lower the "
                  "learning rate", file=sys.stderr)
    except Stopped as stop:
        status, reason, exit_code = stop.status, stop.reason, stop.exit_code
    except ExportError as exc:  # a shipped file would not behave like the trained model
        reason = f"ExportError: {exc}"
        print(f"train_trial.py: error: {exc}", file=sys.stderr)
    except (Exception, SystemExit) as exc:  # noqa: BLE001  recorded as `failed`; PAI calls sys.exit() and pdb on some error paths
        reason = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        recorder.finish(status, reason, measured, exit_code)
        if options.block_output is not None:  # its final record: how the block run ended, what it shipped
            write_summary(options.block_output, recorder.record, options.info, deployed)
    print(f"trial {run_id}: {status}" + (f" ({reason})" if reason else "") + f" -> {trial_dir}", flush=True)
    return exit_code
