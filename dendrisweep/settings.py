"""The parameter registry: every training setting declared once.

The CLI flags of train_trial.py, the W&B config defaults, sweep validation and the Edge Impulse
`parameters.json` are all generated from `SETTINGS`, so a name can never be spelled two ways
(a parameter spelt one way in the UI and another in the script is silently dropped).
"""
from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dendrisweep.errors import UsageError

Kind = Literal["int", "float", "bool", "choice", "floats", "text", "device"]
Group = Literal["training", "data", "pai", "deploy"]

DEVICES = re.compile(r"auto|cpu|mps|cuda(:\d+)?")  # what `device` accepts; dendrisweep.device resolves it
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Setting:
    """One training setting: its type, default, help text and allowed values."""

    name: str
    kind: Kind
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    booleans: tuple[str, str] | None = None  # a choice that also takes true/false (as W&B's own flags do): these two
    group: Group = "training"
    edge_impulse: bool = True  # shown in the Edge Impulse block's UI

    @property
    def flag(self) -> str:
        """The dashed CLI flag, e.g. `--max-dendrites`."""
        return "--" + self.name.replace("_", "-")

    def coerce(self, raw: Any) -> Any:
        """Parse a CLI string or a YAML/JSON value into this setting's type, then check its range."""
        value = _PARSERS[self.kind](self, raw)
        self._check(value)
        return value

    def _check(self, value: Any) -> None:
        items = value if self.kind == "floats" else [value]
        for item in items:
            if self.kind in ("int", "float", "floats"):
                if self.low is not None and item < self.low:
                    raise UsageError(f"{self.name}: {item!r} is below the minimum {self.low:g}")
                if self.high is not None and item > self.high:
                    raise UsageError(f"{self.name}: {item!r} is above the maximum {self.high:g}")


def _bad(setting: Setting, raw: Any, expected: str) -> UsageError:
    return UsageError(f"{setting.name}: expected {expected}, got {raw!r}")


def _parse_int(setting: Setting, raw: Any) -> int:
    if isinstance(raw, bool):
        raise _bad(setting, raw, "an integer")
    if isinstance(raw, int):
        return raw
    try:
        number = float(str(raw).strip())
    except ValueError:
        raise _bad(setting, raw, "an integer") from None
    if not math.isfinite(number) or number != int(number):
        raise _bad(setting, raw, "an integer")
    return int(number)


def _parse_float(setting: Setting, raw: Any) -> float:
    if isinstance(raw, bool):
        raise _bad(setting, raw, "a number")
    try:
        number = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        raise _bad(setting, raw, "a number") from None
    if not math.isfinite(number):
        raise _bad(setting, raw, "a finite number")
    return number


def _parse_bool(setting: Setting, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(setting, raw, "true/false or 1/0")


def _parse_choice(setting: Setting, raw: Any) -> str:
    text = str(raw).strip().lower()
    if setting.booleans is not None and text in _TRUE | _FALSE:
        text = setting.booleans[0] if text in _TRUE else setting.booleans[1]
    if text not in setting.choices:
        raise UsageError(f"{setting.name}: {raw!r} is not one of {', '.join(setting.choices)}")
    return text


def _parse_floats(setting: Setting, raw: Any) -> list[float]:
    """A list of numbers: a YAML/JSON list, or a string such as `0.001,0.0001,0` or `[0.01, 0]`."""
    items: Any = raw
    if isinstance(raw, str):
        text = raw.strip()
        try:
            items = json.loads(text) if text.startswith("[") else text.split(",")
        except json.JSONDecodeError:
            raise _bad(setting, raw, "a list of numbers such as 0.001,0.0001,0") from None
    if isinstance(items, (int, float)) and not isinstance(items, bool):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise _bad(setting, raw, "a non-empty list of numbers")
    return [_parse_float(setting, item) for item in items]


def _parse_text(setting: Setting, raw: Any) -> str:
    if isinstance(raw, (list, dict)):
        raise _bad(setting, raw, "text")
    # A sweep's `value: null` is None in W&B's parameter file and "None" in its ${args} macro: unset, not a name.
    return "" if raw is None or raw == "None" else str(raw).strip()


def _parse_device(setting: Setting, raw: Any) -> str:
    text = str(raw).strip().lower()
    if not DEVICES.fullmatch(text):
        raise UsageError(f"{setting.name}: {raw!r} is not auto, cpu, cuda, cuda:N or mps")
    return text


_PARSERS = {
    "text": _parse_text,
    "device": _parse_device,
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "choice": _parse_choice,
    "floats": _parse_floats,
}


def _declare(*settings: Setting) -> dict[str, Setting]:
    return {s.name: s for s in settings}


SETTINGS: dict[str, Setting] = _declare(
    # --- ordinary training settings -------------------------------------------------------
    Setting("task", "choice", "kws",
            "What to train: Edge Impulse's keyword-spotting network on MFCC features (kws) or "
            "torchvision's MobileNetV3-Small on images (mobilenet).", choices=("kws", "mobilenet"),
            edge_impulse=False),
    Setting("learning_rate", "float", 0.005, "Adam learning rate (the Edge Impulse default is 0.005).",
            low=1e-6, high=10.0),
    Setting("batch_size", "int", 32, "Mini-batch size.", low=1, high=4096),
    # A safety net, not a budget: a dendritic trial ends when PAI reports training complete (its README:
    # loop until training_complete; its MNIST example sets 10,000 epochs), a baseline when PAI's own
    # rule says it stopped improving (n_epochs_to_switch), so neither side gets more epochs by fiat.
    Setting("epochs", "int", 500,
            "Epoch cap, a safety net: training ends when PAI reports it complete (the baseline: when it "
            "stops improving by PAI's rule); a trial that reaches the cap says so (stop_reason 'epoch cap').",
            low=1, high=10000),
    Setting("dropout", "float", 0.25, "Dropout after each convolution block.", low=0.0, high=0.9),
    Setting("width_multiplier", "float", 1.0,
            "Scales the channel count of every convolution (keyword spotting: 8, 16, ... at 1.0; "
            "MobileNet: torchvision's width_mult).", low=0.05, high=8.0),
    Setting("num_conv_layers", "int", 2, "Keyword spotting: number of Conv1D + MaxPool blocks.", low=1, high=6),
    Setting("pretrained_weights", "text", "",
            "MobileNet: a local state-dict file to start from (e.g. ImageNet weights); never downloaded.",
            edge_impulse=False),
    Setting("seed", "int", 0, "Seed for weight initialisation and batch order.", low=0, high=2**31 - 1),
    Setting("weight_decay", "float", 0.0, "Adam weight decay.", low=0.0, high=1.0),
    Setting("input_noise", "float", 0.0,
            "Standard deviation of Gaussian noise added to training inputs.", low=0.0, high=100.0),
    # PAI's README: patience 5, "make sure this is lower than epochs to switch" (we keep it at most half).
    Setting("scheduler_patience", "int", 5,
            "ReduceLROnPlateau patience in epochs; keep it below n_epochs_to_switch.", low=0, high=1000),
    Setting("n_epochs_to_switch", "int", 10,
            "Patience in epochs without improvement, by PAI's rule: in history mode PAI adds dendrites (or, "
            "after the last, ends training) after this many; the baseline stops after this many.",
            low=1, high=1000),
    Setting("device", "device", "auto",
            "Where to train: auto (the first visible CUDA GPU, then Apple MPS, then the CPU), cpu, cuda, "
            "cuda:N or mps. Export and the deployment gate always run on the CPU.", edge_impulse=False),
    Setting("log_model", "choice", "auto",
            "Log the best model (best_model.pt with its result.json) as the W&B artifact model-<run id>, alias "
            "best, as W&B's own integrations name it: auto (when the run is online), on (offline runs carry it "
            "into `wandb sync`) or off; true and false, as W&B's own integrations take them, are on and off.",
            choices=("auto", "on", "off"), booleans=("on", "off"), edge_impulse=False),
    Setting("amp", "choice", "off",
            "Mixed precision for training and validation: off, bf16 (CPU or GPU) or fp16 (GPU, with loss "
            "scaling on CUDA).", choices=("off", "bf16", "fp16"), edge_impulse=False),
    # --- data ---------------------------------------------------------------------------------
    # 0.2: on the spoken-keyword set (600 per class) that is 576 test samples, one run's binomial noise
    # about 1.4 pp at 87 % accuracy; at 0.1 and 300 per class it was 144 samples and 2.8 pp.
    Setting("features_per_frame", "int", 13,
            "Keyword-spotting input: features in one time frame of the flat feature vector (MFCC "
            "coefficients, 13 by default; MFE filters, 32 or 40; spectrogram bins, FFT length / 2 + 1; 1 for "
            "a raw signal; the number of axes for motion data). The network's input channels.",
            low=1, high=4096, group="data"),
    Setting("test_fraction", "float", 0.2,
            "Share of the training split held out (stratified, fixed) to score the best model.",
            low=0.0, high=0.5, group="data"),
    Setting("validation_set_size", "float", 0.2,
            "Share of the training samples held out for validation when the data folder has no validation "
            "split (edge-impulse-blocks runner's layout; Edge Impulse passes --validation-set-size).",
            low=0.01, high=0.9, group="data", edge_impulse=False),
    Setting("data_seed", "int", 0, "Seed of the built-in offline data set and of the test hold-out.",
            low=0, high=2**31 - 1, group="data", edge_impulse=False),
    Setting("image_size", "int", 32, "MobileNet: images are resized to this square size.", low=16, high=512,
            group="data", edge_impulse=False),
    Setting("builtin_samples", "int", 1200,
            "Training samples of the built-in data set (validation gets a quarter as many); "
            "ignored with --data-directory.", low=40, high=200000, group="data", edge_impulse=False),
    # --- dendritic optimisation (perforatedai) ---------------------------------------------
    Setting("dendrites", "bool", True, "Add dendrites with perforatedai (off = the baseline model).",
            group="pai"),
    Setting("max_dendrites", "int", 3,
            "Most dendrites per layer; enforced by dendrisweep even when PAI retries overshoot.",
            low=1, high=100, group="pai"),
    Setting("max_dendrite_tries", "int", 2,
            "How many times PAI retries a dendrite that did not improve the score.", low=1, high=10,
            group="pai"),
    Setting("switch_mode", "choice", "history",
            "When PAI adds dendrites: after the score stops improving (history) or every "
            "fixed_switch_num epochs (fixed).", choices=("history", "fixed"), group="pai"),
    Setting("fixed_switch_num", "int", 10, "Fixed mode: epochs between dendrite additions.",
            low=1, high=10000, group="pai"),
    Setting("first_fixed_switch_num", "int", -1,
            "Fixed mode: epochs before the first addition (-1 = fixed_switch_num).", low=-1, high=10000,
            group="pai"),
    Setting("history_lookback", "int", 1, "History mode: epochs averaged when judging improvement.",
            low=1, high=100, group="pai"),
    Setting("initial_history_after_switches", "int", 0,
            "History mode: epochs ignored after each switch.", low=0, high=100, group="pai"),
    Setting("improvement_threshold", "floats", [0.001, 0.0001, 0.0],
            "Relative improvement a new dendrite must bring, indexed by dendrite count "
            "(comma-separated list).", low=0.0, high=1.0, group="pai"),
    Setting("candidate_weight_initialization_multiplier", "float", 0.01,
            "Scale of a new dendrite's initial weights.", low=1e-6, high=10.0, group="pai"),
    Setting("pai_forward_function", "choice", "sigmoid", "Dendrite non-linearity.",
            choices=("sigmoid", "relu", "tanh"), group="pai"),
    Setting("dont_give_up_unless_learning_rate_lowered", "bool", True,
            "Keep training a dendrite count until the learning rate has been lowered.", group="pai"),
    # Off: PAI reloads the better learning-rate attempt only with its test saves on, and its own settings
    # text keeps the search to step schedulers (ours is ReduceLROnPlateau). On, dendrisweep turns test
    # saves on too, so the search works as PAI intends (pai.py).
    Setting("find_best_lr", "bool", False,
            "After adding dendrites, search for the best learning rate again (PAI keeps the better attempt).",
            group="pai"),
    Setting("dendrite_layers", "choice", "all",
            "Which layers get dendrites: all (conv + dense), conv only, or the classifier only.",
            choices=("all", "conv", "classifier"), group="pai"),
    Setting("pai_graphs", "bool", False,
            "Let PAI draw its own graphs (about 0.65 s per epoch; for debugging).", group="pai",
            edge_impulse=False),
    # Deployment (the Edge Impulse block, `analysis regenerate`, and a trial measuring its deployed model).
    Setting("compare_baseline", "bool", False,
            "Edge Impulse block: also train the same network without dendrites, on the same seed and data, "
            "and print both side by side (one run each: a first look, not a verdict).", group="deploy"),
    Setting("int8_tolerance_pp", "float", 1.5,
            "Deployment gate: the int8 TFLite model may score at most this many points below float32 "
            "on held-out data.", low=0.0, high=100.0, group="deploy"),
    # Off the Edge Impulse UI: the block deploys (and so measures) its model anyway.
    Setting("deploy_metrics", "bool", False,
            "Measure the best model as a device runs it: int8 TFLite flash bytes, arena (RAM) bytes, LiteRT "
            "latency and int8 accuracy, from one conversion per trial (about 40 CPU seconds) into the trial's "
            "deployed/ folder; a sweep can then optimise them.", group="deploy", edge_impulse=False),
)


def lookup(name: str) -> Setting:
    """Find a setting by any spelling (`max_dendrites`, `max-dendrites`, `--max-dendrites`)."""
    canonical = name.strip().lstrip("-").replace("-", "_")
    if canonical in SETTINGS:
        return SETTINGS[canonical]
    close = difflib.get_close_matches(canonical, SETTINGS, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UsageError(f"unknown setting '{name}'{hint}")


def defaults() -> dict[str, Any]:
    """Every setting at its default, in declaration order."""
    return {name: _copy(s.default) for name, s in SETTINGS.items()}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def coerce_mapping(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Validate a partial config (from a file, the CLI or a sweep); errors name the source."""
    out: dict[str, Any] = {}
    for key, raw in values.items():
        try:
            setting = lookup(str(key))
            out[setting.name] = setting.coerce(raw)
        except UsageError as exc:
            raise UsageError(f"{source}: {exc}") from None
    return out
