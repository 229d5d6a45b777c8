"""Resolve a trial's config from its layers: defaults < --config file < CLI flags < W&B sweep values.

The last layer is the file `wandb agent` names in WANDB_SWEEP_PARAM_PATH; reading it here (rather
than only inside `wandb.init`) lets `--print-config` show exactly what the trial will train with.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dendrisweep.errors import UsageError
from dendrisweep.settings import coerce_mapping, defaults

# Keys W&B writes into its own config.yaml files; they are bookkeeping, not settings.
_WANDB_BOOKKEEPING = {"wandb_version", "_wandb"}


def load_mapping_file(path: str | Path, what: str, allow_empty: bool = True) -> dict[str, Any]:
    """Read a YAML or JSON file that must hold a mapping; any problem is one UsageError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise UsageError(f"{what} {path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} "
                         f"({_syntax_problem(exc)})") from None
    if data is None and not allow_empty:
        raise UsageError(f"{what} {path}: is empty")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _syntax_problem(exc: Exception) -> str:
    """Where and what, e.g. `expected ',' or ']' at line 3, column 5`."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _unwrap(values: Mapping[str, Any]) -> dict[str, Any]:
    """Accept W&B's `{name: {value: v}}` form as well as plain `{name: v}`."""
    out = {}
    for key, value in values.items():
        if key in _WANDB_BOOKKEEPING:
            continue
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        out[key] = value
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The `--config FILE` layer (YAML or JSON), validated against the registry."""
    return coerce_mapping(_unwrap(load_mapping_file(path, "config file")), f"config file {path}")


def read_sweep_params(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The W&B sweep layer: the param file `wandb agent` (or agent.py) names in the environment."""
    path = env.get("WANDB_SWEEP_PARAM_PATH")
    if not path:
        return {}
    return coerce_mapping(_unwrap(load_mapping_file(path, "sweep parameter file")),
                          f"sweep parameter file {path}")


def resolve(config_file: str | Path | None, cli_values: Mapping[str, Any],
            env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Merge the four layers; later layers win."""
    config = defaults()
    if config_file:
        config.update(read_config_file(config_file))
    config.update(cli_values)
    config.update(read_sweep_params(env))
    return config
