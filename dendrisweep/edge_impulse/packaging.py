"""Packaging the Edge Impulse custom learning block: its parameters.json, its pinned requirements and its
push-ready folder.

parameters.json is generated from the registry, so every UI parameter's `param` is exactly a flag
train_trial.py accepts: a UI parameter cannot name a flag the script would not read. requirements.txt is
generated from requirements.lock (the versions the checks run with): what the block imports (DEPENDENCIES)
and everything that needs, so the image holds the versions that were tested.

    python -m dendrisweep.edge_impulse parameters [--check]     # (re)write edge_impulse/parameters.json
    python -m dendrisweep.edge_impulse requirements [--check]   # (re)write edge_impulse/requirements.txt
    python -m dendrisweep.edge_impulse package DIR              # a folder to `edge-impulse-blocks push`
"""
from __future__ import annotations

import json
import shutil
import sys
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
LOCK_FILE = ROOT / "requirements.lock"  # the versions the project's checks run with
_TYPES = {"int": "int", "float": "float", "bool": "boolean", "choice": "select", "floats": "string", "text": "string"}
INFO = {  # no repositoryUrl: it is optional, and a placeholder would send users nowhere
    "name": "Dendritic keyword spotting (dendrisweep)",
    "description": "Edge Impulse's keyword-spotting network (Conv1D over frames of MFCC, MFE or spectrogram "
                   "features, or raw sensor axes) trained with dendritic optimisation (perforatedai). Ships "
                   "model.tflite and model_quantized_int8_io.tflite, each checked against the trained model "
                   "before the block finishes.",
    "operatesOn": "other",  # "Classification" of any data in edge-impulse-cli's list (cli/blocks/init-cli-block.ts)
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


def write_generated(path: Path, text: str, command: str, check: bool) -> str:
    """Write a generated file, or (check) fail when the committed one differs from `text`."""
    if check:
        if not path.is_file() or path.read_text() != text:
            raise UsageError(f"{path} is out of date; run python -m dendrisweep.edge_impulse {command}")
        return f"{path} is up to date"
    path.write_text(text)
    return f"wrote {path}"


# What the block imports, by distribution; the image gets these and all they need (pinned_closure).
DEPENDENCIES = (
    "torch", "torchvision",  # the default build: CUDA when Edge Impulse gives the block a GPU, the CPU otherwise
    "perforatedai", "numpy", "pyyaml", "tqdm", "scipy",
    "wandb",  # imported by the trial; the image sets WANDB_MODE=disabled
    "onnx", "onnxruntime",
    # the deployment gate (run in child processes): the same pins as the project's requirements.txt
    "tensorflow", "tf_keras", "onnx2tf", "onnxsim", "onnx-graphsurgeon", "sng4onnx", "sne4onnx", "psutil",
    "ai-edge-litert",
)


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    """requirements.lock: normalised name -> the version the checks ran with."""
    from packaging.utils import canonicalize_name

    pins = (line.split("==") for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {canonicalize_name(name): version for name, version in pins}


def pinned_closure(names: Sequence[str]) -> dict[str, str]:
    """Each distribution `names` install here, with everything it requires (the extras asked for included,
    markers evaluated for this machine), by normalised name: its installed version."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str], str]] = [(name, frozenset(), "the block") for name in names]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras, wanted_by = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise UsageError(f"{name} (needed by {wanted_by}) is not installed here: install the project's "
                             "requirements first") from None
        found[key] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in (extras or {""})):
                todo.append((requirement.name, frozenset(requirement.extras), name))
    return found


def render_requirements() -> str:
    """What the block imports and everything that needs (as installed here), at requirements.lock's versions."""
    lock, names = read_lock(), sorted(pinned_closure(DEPENDENCIES))
    missing = [name for name in names if name not in lock]
    if missing:
        raise UsageError(f"{LOCK_FILE.name} lacks {', '.join(missing)}: regenerate it (its header says how)")
    header = ["# Generated by `python -m dendrisweep.edge_impulse requirements` from requirements.lock (the versions",
              "# the checks ran with): what the block imports (DEPENDENCIES in dendrisweep/edge_impulse/packaging.py)",
              "# and everything that needs. Never edit by hand; `--check` (a test) fails when it and the lock differ.",
              f"# For the image: Linux, CPython {sys.version_info.major}.{sys.version_info.minor} "
              f"(python:{sys.version_info.major}.{sys.version_info.minor}-slim)."]
    return "\n".join([*header, *(f"{name}=={lock[name]}" for name in names)]) + "\n"


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
    for command, what in (("parameters", "edge_impulse/parameters.json from the registry"),
                          ("requirements", "edge_impulse/requirements.txt from requirements.lock")):
        generated = commands.add_parser(command, help=f"write {what}")
        generated.add_argument("--check", action="store_true", help="fail (exit 2) if the committed file is stale")
    pack = commands.add_parser("package", help="assemble a folder to push with edge-impulse-blocks")
    pack.add_argument("target", type=Path)
    with cli_errors("python -m dendrisweep.edge_impulse"):
        opts = parser.parse_args(argv)
        if opts.command == "package":
            print(package(opts.target))
        else:
            path, text = ((PARAMETERS_FILE, render()) if opts.command == "parameters"
                          else (BLOCK_REQUIREMENTS, render_requirements()))
            print(write_generated(path, text, opts.command, opts.check))
    return 0
