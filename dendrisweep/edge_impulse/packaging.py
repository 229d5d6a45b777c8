"""Packaging the Edge Impulse custom learning block: its parameters.json and its push-ready folder.

parameters.json is generated from the registry, so every UI parameter's `param` is exactly a flag
train_trial.py accepts: a UI parameter cannot name a flag the script would not read.

    python -m dendrisweep.edge_impulse parameters [--check]   # (re)write edge_impulse/parameters.json
    python -m dendrisweep.edge_impulse package DIR            # a folder to `edge-impulse-blocks push`
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dendrisweep.errors import ArgumentParser, UsageError, cli_errors
from dendrisweep.settings import SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[2]
BLOCK_DIR = ROOT / "edge_impulse"
PARAMETERS_FILE = BLOCK_DIR / "parameters.json"
# Copied into a push-ready block folder: everything the Dockerfile needs (the block's own requirements).
PACKAGE = ("train_trial.py", "dendrisweep")
BLOCK_REQUIREMENTS = BLOCK_DIR / "requirements.txt"
_TYPES = {"int": "int", "float": "float", "bool": "boolean", "choice": "select", "floats": "string", "text": "string"}
INFO = {  # no repositoryUrl: it is optional, and a placeholder would send users nowhere
    "name": "Dendritic keyword spotting (dendrisweep)",
    "description": "Edge Impulse's keyword-spotting network (Conv1D over frames of MFCC, MFE or spectrogram "
                   "features, or raw sensor axes) trained with dendritic optimisation (perforatedai). Ships "
                   "model.onnx, model.tflite and model_quantized_int8_io.tflite, each checked against the trained "
                   "model before the block finishes.",
    "operatesOn": "audio",
    "indRequiresGpu": False,
}
PRIMARY = ("learning_rate", "epochs", "features_per_frame", "dendrites")  # shown; everything else is advanced
LABELS = {  # where the registry name does not read as a label
    "epochs": "Epoch cap", "features_per_frame": "Features per frame", "num_conv_layers": "Convolution layers",
    "n_epochs_to_switch": "Epochs without improvement before a switch", "test_fraction": "Held-out test share",
    "fixed_switch_num": "Epochs per fixed switch", "first_fixed_switch_num": "Epochs before the first fixed switch",
    "find_best_lr": "Try learning rates at each switch (PAI's find_best_lr)",
    "dont_give_up_unless_learning_rate_lowered": "Keep a phase going until the learning rate was lowered",
    "pai_forward_function": "Dendrite activation", "int8_tolerance_pp": "int8 accuracy tolerance (pp)",
    "candidate_weight_initialization_multiplier": "Dendrite weight initialisation scale",
}


def _label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def ui_value(setting: Setting, value: Any) -> Any:
    """A setting value as the Edge Impulse UI holds it (lists as comma-separated text)."""
    return ",".join(f"{v:g}" for v in value) if setting.kind == "floats" else value


def parameter(setting: Setting) -> dict[str, Any]:
    """One UI parameter: the PRIMARY few shown, the rest in the advanced section (dendrite settings only
    when dendrites are on), as Edge Impulse's own blocks show two or three."""
    item: dict[str, Any] = {"name": _label(setting.name), "value": ui_value(setting, setting.default),
                            "type": _TYPES[setting.kind], "help": setting.help, "param": setting.flag[2:]}
    if setting.choices:
        item["valid"] = list(setting.choices)
    if setting.group == "pai" and setting.name != "dendrites":
        item["section"] = "advanced"
        item["showIf"] = {"parameter": SETTINGS["dendrites"].flag[2:], "operator": "eq", "value": "true"}
    if setting.name not in PRIMARY:
        item["section"] = "advanced"
    return item


def block_parameters() -> dict[str, Any]:
    """The whole parameters.json, from the registry."""
    return {"version": 1, "type": "machine-learning", "info": INFO,
            "parameters": [parameter(s) for s in SETTINGS.values() if s.edge_impulse]}


def render() -> str:
    return json.dumps(block_parameters(), indent=4) + "\n"


def write_parameters(check: bool) -> str:
    """Write edge_impulse/parameters.json, or (check) fail when the committed file differs."""
    text = render()
    if check:
        if not PARAMETERS_FILE.is_file() or PARAMETERS_FILE.read_text() != text:
            raise UsageError(f"{PARAMETERS_FILE} is out of date; run python -m dendrisweep.edge_impulse parameters")
        return f"{PARAMETERS_FILE} matches the registry"
    PARAMETERS_FILE.write_text(text)
    return f"wrote {PARAMETERS_FILE} ({len(block_parameters()['parameters'])} parameters)"


def package(target: Path) -> str:
    """A self-contained block folder: Dockerfile, parameters.json and the code it runs."""
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("Dockerfile", "parameters.json", ".dockerignore"):
        shutil.copy2(BLOCK_DIR / name, target / name)
    shutil.copy2(BLOCK_REQUIREMENTS, target / "requirements.txt")
    for name in PACKAGE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    return f"block folder ready: cd {target} && edge-impulse-blocks init && edge-impulse-blocks push"


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m dendrisweep.edge_impulse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    params = commands.add_parser("parameters", help="write edge_impulse/parameters.json from the registry")
    params.add_argument("--check", action="store_true", help="fail (exit 2) if the committed file is stale")
    pack = commands.add_parser("package", help="assemble a folder to push with edge-impulse-blocks")
    pack.add_argument("target", type=Path)
    with cli_errors("python -m dendrisweep.edge_impulse"):
        opts = parser.parse_args(argv)
        print(write_parameters(opts.check) if opts.command == "parameters" else package(opts.target))
    return 0
