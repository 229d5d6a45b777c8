"""The command line of train_trial.py, generated from the registry (the runner sits below it, in run.py).

Every setting gets its dashed flag (`--max-dendrites`) and its underscored twin (`--max_dendrites`,
which W&B's `${args}` macro produces). Unknown flags are an error naming the closest setting:
`parse_known_args` would swallow them silently, and a misspelt parameter would never reach training.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from dendrisweep.config import resolve
from dendrisweep.contract import OUT_DIR_ENV
from dendrisweep.data.layout import FrameLayout, frame_layout, parse_shape
from dendrisweep.edge_impulse.runtime import HOME, INFO_FILE, block_paths, no_project_data, read_info_file
from dendrisweep.errors import ArgumentParser, UsageError, cli_errors
from dendrisweep.files import require_weights
from dendrisweep.settings import SETTINGS, lookup
from dendrisweep.trial.options import TrialOptions
from dendrisweep.trial.tracking import DEFAULT_PROJECT

DEFAULT_OUT_DIR = "trials"


def build_parser() -> argparse.ArgumentParser:
    """The parser: run options first, then one flag pair per registry setting."""
    parser = ArgumentParser(prog="train_trial.py", allow_abbrev=False,
                     description="Train one model (keyword spotting or MobileNetV3-Small), with or "
                                 "without dendrites, and log it to Weights & Biases.")
    run = parser.add_argument_group("run")
    run.add_argument("--config", type=Path, help="YAML or JSON file of settings (below CLI flags).")
    run.add_argument("--print-config", action="store_true",
                     help="Print the resolved config as JSON and exit without training.")
    run.add_argument("--data-directory", type=Path,
                     help="Edge Impulse layout (X_split_train.npy, ...); default: built-in data, or with "
                          f"--edge-impulse where Edge Impulse mounts the project ({HOME}; never built-in data).")
    run.add_argument("--out-directory", type=Path,
                     help=f"Where the trial writes its folder (default: ${OUT_DIR_ENV} or ./{DEFAULT_OUT_DIR}); with "
                          "--edge-impulse, the folder Edge Impulse collects the model from (default: the data "
                          "folder, as the runner collects it) and the trial's folder goes to the default.")
    run.add_argument("--wandb-project", help=f"W&B project (default: $WANDB_PROJECT or {DEFAULT_PROJECT}).")
    run.add_argument("--edge-impulse", action="store_true",
                     help="Run as an Edge Impulse learning block: write the gated model.tflite and "
                          "model_quantized_int8_io.tflite into --out-directory.")
    run.add_argument("--info-file", "--input-file", dest="info_file", type=Path,
                     help="Edge Impulse's train_input.json (passed by Studio; default with --edge-impulse: the "
                          "data folder's).")
    run.add_argument("--input-shape", type=lambda text: parse_shape(text, "--input-shape"), metavar='"(N, ...)"',
                     help="The input shape Edge Impulse's runner passes, a Python tuple; with two or more "
                          "dimensions its last is the features per frame (a different --features-per-frame is "
                          "an error).")
    run.add_argument("--preemptible", action="store_true",
                     help="A SIGTERM is a preemption (for a scheduler that preempts with SIGTERM; Slurm's notice, "
                          "SIGUSR1, always is one): mark the W&B run preempting and exit 143 so W&B requeues it, "
                          "instead of stopping it.")
    run.add_argument("--deploy-as", metavar="NAME",
                     help="Deploy the best model as `analysis regenerate` does (it passes this): NAME.onnx, "
                          "NAME.tflite, ... in the trial's deployed/ folder with deployed.json, int8 held to "
                          "int8_tolerance_pp (a failed gate is recorded as deploy_error).")
    for group_name in ("training", "data", "pai", "deploy"):
        group = parser.add_argument_group(group_name)
        for setting in SETTINGS.values():
            if setting.group != group_name:
                continue
            extra: dict[str, Any] = {"nargs": "?", "const": "true"} if setting.kind == "bool" else {}
            if setting.choices:
                extra["metavar"] = "{" + ",".join(setting.choices) + "}"
            group.add_argument(setting.flag, "--" + setting.name, dest=setting.name,
                               type=setting.coerce, default=argparse.SUPPRESS,
                               help=f"{setting.help} (default: {setting.default})", **extra)
    return parser


NEAR_MISS = 0.85  # an unknown flag this close to a setting's name is its typo: an error even under Edge Impulse


def _unknown(extras: Sequence[str], lenient: bool) -> list[str]:
    """Unknown arguments are an error naming the closest setting. Under Edge Impulse, which may pass
    arguments a block does not declare, they are ignored (and returned, to be warned about), except a
    near-miss of a setting's name: a typo of a UI parameter must never be dropped silently."""
    ignored: list[str] = []
    for i, token in enumerate(extras):
        if not token.startswith("-"):
            if lenient and i and extras[i - 1].startswith("-") and "=" not in extras[i - 1]:
                continue  # the value of an ignored flag
            raise UsageError(f"unexpected argument '{token}'")
        name = token.split("=", 1)[0]
        if not lenient or difflib.get_close_matches(name.lstrip("-").replace("-", "_"), SETTINGS, 1, NEAR_MISS):
            lookup(name)  # raises with the closest known setting
        ignored.append(name)
    return ignored


def parse_trial_args(argv: Sequence[str] | None) -> TrialOptions:
    """Parse argv; any unknown or malformed argument is a UsageError."""
    parser = build_parser()
    namespace, extras = parser.parse_known_args(argv)
    for name in _unknown(extras, lenient=namespace.edge_impulse):
        print(f"train_trial.py: warning: ignoring {name}: not an argument of this block (Edge Impulse may pass "
              "arguments a block does not use)", file=sys.stderr)
    values = vars(namespace)
    run_keys = ("config", "print_config", "data_directory", "out_directory", "wandb_project", "edge_impulse",
                "info_file", "input_shape", "preemptible", "deploy_as")
    run = {key: values.pop(key) for key in run_keys}
    data, out, block_output, info_file = run["data_directory"], run["out_directory"], None, run["info_file"]
    if run["edge_impulse"]:  # --out-directory is Edge Impulse's output folder; the trial's goes to the default
        paths = block_paths(data, out, info_file)
        data, block_output, info_file = paths.data, paths.out, paths.info
        out = None
    info = read_info_file(info_file)
    shapes = [("--input-shape", run["input_shape"])] if run["input_shape"] else []
    if isinstance(info.get("inputShapeString"), str):
        shapes.append((f"{INFO_FILE}'s inputShapeString", parse_shape(info["inputShapeString"],
                                                                     f"{INFO_FILE} inputShapeString")))
    # Absolute now: the trial later runs inside its own folder (PAI writes into the current one).
    out_dir = (out or Path(os.environ.get(OUT_DIR_ENV) or DEFAULT_OUT_DIR)).absolute()
    return TrialOptions(
        cli_values=values,
        config_file=run["config"],
        print_config=run["print_config"],
        data_directory=data,
        out_directory=out_dir,
        wandb_project=run["wandb_project"] or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
        block_output=block_output,
        info=info,
        input_shapes=tuple(shapes),
        preemptible=run["preemptible"],
        deploy_as=run["deploy_as"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """train_trial.py: resolve the config, then print it or run the trial.

    Training imports (torch, PAI, W&B) are deferred so `--print-config` answers in a blink.
    """
    with cli_errors("train_trial.py"):
        options = parse_trial_args(argv)
        config = resolve(options.config_file, options.cli_values)
        layout = None
        if config["task"] == "kws":  # frames of keyword-spotting features; MobileNet reads images whole
            layout = frame_layout(config["features_per_frame"], SETTINGS["features_per_frame"].default,
                                  options.input_shapes)
            config["features_per_frame"] = layout.width
        if options.print_config:
            print(json.dumps(config))
            return 0
        if config["pretrained_weights"]:  # before the slow imports: a typo costs no wait
            require_weights(config["pretrained_weights"])
        if options.edge_impulse and options.data_directory is None:
            raise no_project_data()
        from dendrisweep.data import load_dataset

        data = load_dataset(options.data_directory, config)  # bad data fails before torch is imported
        named = options.info.get("classes")
        if options.edge_impulse and named and len(named) != data.num_classes:
            raise UsageError(f"train_input.json names {len(named)} classes but the labels hold {data.num_classes}")
        from dendrisweep import device
        from dendrisweep.trial.run import run_trial

        precision = device.Precision(device.resolve(config["device"]), config["amp"])  # no such GPU: exit 2 here
        if layout is not None:  # after every check of the input: a run that stops says only why
            if options.data_directory is None and layout.from_default:  # generated that way: nothing to doubt
                layout = FrameLayout(layout.width, "the built-in keyword set's MFCC frames")
            options = replace(options, layout=announce(layout, data.shape.sample[0]))
        return run_trial(config, data, options, precision)


def announce(layout: FrameLayout, features: int) -> tuple[str, str | None]:
    """Say which frame layout the trial uses, first thing in the log (a doubt as a warning); returned for
    the trial's record."""
    described, doubt = layout.describe(features), layout.doubt(features)
    print(f"frame layout: {described}", flush=True)
    if doubt:
        print(f"train_trial.py: WARNING: {doubt}", file=sys.stderr, flush=True)
    return described, doubt


def cli() -> None:
    """Script entry: stdin closed so PAI's pdb/input calls fail fast instead of hanging."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115  open for the life of the process
    raise SystemExit(main())
