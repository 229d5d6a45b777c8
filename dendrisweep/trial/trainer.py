"""The training loop, readable in one sitting.

One loop serves the baseline and the dendritic model; a small strategy object supplies what
differs (the optimizer and what happens after each epoch). The best model is snapshotted by
validation accuracy among states within the dendrite budget, so the reported model is the one
that was actually measured, whatever PAI does next (its retries can overshoot max_dendrites).
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dendrisweep import pai
from dendrisweep.contract import EPOCH_CAP
from dendrisweep.data import Dataset, LabelledArrays
from dendrisweep.device import Precision
from dendrisweep.measure import count_parameters

EVAL_BATCH = 1024


class Diverged(Exception):
    """The loss stopped being a finite number; the trial ends as `diverged`, not `failed`."""


class Stopped(BaseException):
    """The run was asked to stop (its agent's SIGTERM, W&B's SIGINT): training ends at once and keeps the
    best model measured so far. A BaseException, so no `except Exception` on the way swallows it."""

    def __init__(self, status: str, reason: str, exit_code: int) -> None:
        super().__init__(reason)
        self.status, self.reason, self.exit_code = status, reason, exit_code


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch produced; logged to W&B under these keys."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    best_val_acc: float
    lr: float
    params: int
    dendrites: int
    epoch_seconds: float
    compute_seconds: float

    def metrics(self) -> dict[str, float | int]:
        return {"epoch": self.epoch, "train/loss": self.train_loss, "train/acc": self.train_acc,
                "val/loss": self.val_loss, "val/acc": self.val_acc, "best_val_acc": self.best_val_acc,
                "lr": self.lr, "params": self.params, "dendrites_added": self.dendrites,
                "epoch_seconds": self.epoch_seconds, "compute_seconds": self.compute_seconds}


@dataclass
class BestModel:
    model: nn.Module
    epoch: int
    val_acc: float
    val_loss: float
    dendrites: int
    params: int


@dataclass
class TrainResult:
    best: BestModel
    epochs_run: int
    stop_reason: str
    loop_seconds: float
    compute_seconds: float
    stopped: Stopped | None = None  # set when a stop request ended training


IMPROVEMENT_FLOOR = 1e-5  # PAI's raw improvement threshold: a gain smaller than this never counts


@dataclass
class StopRule:
    """PAI's own rule for "this phase stopped improving" (its history switch: perforatedai 3.2.9 tracker
    `switch_time` and `check_new_best`), applied to a model without dendrites, so the baseline converges
    by the rule that ends each phase of the dendritic arm (a fixed switch schedule is a budget, not
    convergence, so the baseline always uses this one). Epochs count from 0; the first never counts as
    an improvement: a smoothed score (exponential over `lookback` epochs) must beat the best by the
    relative `threshold` and by IMPROVEMENT_FLOOR; training stops once `patience` epochs pass without
    that, and at least `warmup + patience` epochs have run."""

    patience: int
    warmup: int = 0
    lookback: int = 1
    threshold: float = 0.0
    epoch: int = -1
    running: float = 0.0
    best: float = 0.0
    last_improved: int = 0

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> StopRule:
        return cls(config["n_epochs_to_switch"], config["initial_history_after_switches"], config["history_lookback"],
                   config["improvement_threshold"][0])

    def update(self, score: float) -> bool:
        """Record one epoch's validation score; True when training should stop here."""
        self.epoch += 1
        self.running = self.running * (1 - 1 / self.lookback) + score / self.lookback
        if self.epoch > self.warmup and (self.best == 0 or (self.running * (1 - self.threshold) > self.best
                                                            and self.running - IMPROVEMENT_FLOOR > self.best)):
            self.best, self.last_improved = self.running, self.epoch
        return self.epoch - self.last_improved >= self.patience and self.epoch >= self.warmup + self.patience


class Baseline:
    """No dendrites: Adam + ReduceLROnPlateau on validation accuracy, until PAI's rule says it stopped
    improving (StopRule) or the epoch cap."""

    max_dendrites = 0
    finished = "converged (PAI's stopping rule)"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self.rule = StopRule.of(config)

    def prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        return model.to(device)

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        opt = torch.optim.Adam(model.parameters(), lr=self.config["learning_rate"],
                               weight_decay=self.config["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", patience=self.config["scheduler_patience"])
        return opt

    def after_epoch(self, model: nn.Module, val_acc: float, train_acc: float) -> tuple[nn.Module, bool, bool]:
        assert self.scheduler is not None
        self.scheduler.step(val_acc)
        return model, False, self.rule.update(val_acc)

    def dendrites(self) -> int:
        return 0

    def snapshot(self, model: nn.Module) -> nn.Module:
        return copy.deepcopy(model)

    def inference_model(self, model: nn.Module) -> nn.Module:
        return copy.deepcopy(model).eval()

    def count_params(self, model: nn.Module) -> int:
        return count_parameters(model)


class Dendritic:
    """perforatedai decides when to add dendrites and when training is complete."""

    finished = "PAI finished"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.max_dendrites = config["max_dendrites"]

    def prepare(self, model: nn.Module, device: torch.device) -> nn.Module:
        return pai.wrap(model, self.config, device)

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return pai.setup_optimizer(model, self.config)

    def after_epoch(self, model: nn.Module, val_acc: float, train_acc: float) -> tuple[nn.Module, bool, bool]:
        return pai.record_epoch(model, val_acc, train_acc)

    def dendrites(self) -> int:
        return pai.dendrites_added()

    def snapshot(self, model: nn.Module) -> nn.Module:
        return pai.snapshot(model)

    def inference_model(self, model: nn.Module) -> nn.Module:
        return pai.inference_model(model)

    def count_params(self, model: nn.Module) -> int:
        return pai.count_params(model)


Strategy = Baseline | Dendritic


def strategy_for(config: Mapping[str, Any]) -> Strategy:
    return Dendritic(config) if config["dendrites"] else Baseline(config)


def tensors(split: LabelledArrays, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A split on the training device, moved once (the data sets here fit; no per-batch copies)."""
    return torch.from_numpy(split.x).to(device), torch.from_numpy(split.y).to(device)


def _on_cpu_layout(x: torch.Tensor) -> torch.Tensor:
    """Image batches in channels_last, the layout CPU convolutions run fastest in."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             precision: Precision | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of a model on a split, in eval mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad(), (precision.autocast() if precision else contextlib.nullcontext()):
        for start in range(0, len(y), EVAL_BATCH):
            logits = model(_on_cpu_layout(x[start:start + EVAL_BATCH])).float()
            target = y[start:start + EVAL_BATCH]
            loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == target).sum())
    return loss_sum / len(y), correct / len(y)


def predict(model: nn.Module, split: LabelledArrays) -> Any:
    """The model's class for each example of a split (a numpy array), in eval mode, where the model is."""
    model.eval()
    x = torch.from_numpy(split.x).to(next(model.parameters()).device)
    with torch.no_grad():
        return torch.cat([model(_on_cpu_layout(x[i:i + EVAL_BATCH])).argmax(dim=1).cpu()
                          for i in range(0, len(x), EVAL_BATCH)]).numpy()


def score(model: nn.Module, split: LabelledArrays) -> tuple[float, float]:
    """(loss, accuracy) of a model on a split, where the model is."""
    return evaluate(model, *tensors(split, next(model.parameters()).device))


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                 config: Mapping[str, Any], generator: torch.Generator, epoch: int, precision: Precision,
                 scaler: Any) -> tuple[float, float]:
    model.train()
    order = torch.randperm(len(y), generator=generator)  # on the CPU: the same batches on every device
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), config["batch_size"]):
        idx = order[start:start + config["batch_size"]].to(x.device)
        xb, yb = x[idx], y[idx]
        if config["input_noise"] > 0:
            xb = xb + config["input_noise"] * torch.randn(xb.shape, generator=generator).to(x.device)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            logits = model(_on_cpu_layout(xb))
            loss = nn.functional.cross_entropy(logits.float(), yb)
        if not torch.isfinite(loss):
            raise Diverged(f"training loss became {loss.item()} at epoch {epoch}")
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.item() * len(yb)
        correct += int((logits.argmax(dim=1) == yb).sum())
    return loss_sum / len(y), correct / len(y)


TIME_BUDGET = "time budget"  # stop_reason when another epoch would overrun the deadline


def train(model: nn.Module, data: Dataset, config: Mapping[str, Any], strategy: Strategy,
          on_epoch: Callable[[EpochRecord], None], precision: Precision,
          deadline: float | None = None) -> TrainResult:
    """Train until the strategy says training is complete (PAI's completion; the baseline's stopping rule),
    the dendrite budget, the epoch cap or (`deadline`, a time.perf_counter() value) the time budget, when
    another epoch like the last would end after it; return the best model.
    The model (put there by `strategy.prepare`), data and snapshots live on `precision.device`."""
    device = precision.device
    x, y = tensors(data.train, device)
    val_x, val_y = tensors(data.val, device)
    generator = torch.Generator().manual_seed(config["seed"])
    optimizer, scaler = strategy.optimizer(model), precision.scaler()
    best: BestModel | None = None
    epochs_run = 0
    stop_reason, compute_total = EPOCH_CAP, 0.0
    loop_start = time.perf_counter()
    stopped: Stopped | None = None
    try:
        for epoch in range(1, config["epochs"] + 1):
            started = time.perf_counter()
            train_loss, train_acc = _train_epoch(model, optimizer, x, y, config, generator, epoch, precision, scaler)
            val_loss, val_acc = evaluate(model, val_x, val_y, precision)
            compute = time.perf_counter() - started
            if not math.isfinite(val_loss):
                raise Diverged(f"validation loss became {val_loss} at epoch {epoch}")
            dendrites, params = strategy.dendrites(), strategy.count_params(model)
            lr = optimizer.param_groups[0]["lr"]
            if best is None or val_acc > best.val_acc:
                best = BestModel(strategy.snapshot(model), epoch, val_acc, val_loss, dendrites, params)
            model, restructured, complete = strategy.after_epoch(model, val_acc, train_acc)
            compute_total += compute
            record = EpochRecord(epoch, train_loss, train_acc, val_loss, val_acc, best.val_acc, lr, params,
                                 dendrites, time.perf_counter() - started, compute)
            epochs_run = epoch
            on_epoch(record)
            if complete:
                stop_reason = strategy.finished
                break
            if strategy.dendrites() > strategy.max_dendrites:
                stop_reason = f"dendrite budget reached ({strategy.max_dendrites})"
                break
            now = time.perf_counter()
            if deadline is not None and now + (now - started) > deadline:
                stop_reason = TIME_BUDGET
                break
            if restructured:  # PAI rebuilt the model with new dendrites: keep it on the device
                model = model.to(device)
                optimizer = strategy.optimizer(model)
    except Stopped as stop:
        if best is None:  # nothing measured yet: nothing to keep
            raise
        stopped, stop_reason = stop, stop.reason
    assert best is not None
    return TrainResult(best, epochs_run, stop_reason, time.perf_counter() - loop_start, compute_total, stopped)
