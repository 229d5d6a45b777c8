"""Weights & Biases logging for a trial: offline unless a key is configured, never the key itself.

Runs go to `$WANDB_DIR/wandb/` (or ./wandb/) as usual; offline runs can be uploaded later with
`wandb sync`. The run's config is the resolved setting dict and nothing else, so no secret from
the environment can end up in it.
"""
from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlparse

DEFAULT_PROJECT = "dendrisweep"


def api_key_configured(env: Mapping[str, str] = os.environ) -> bool:
    """True when W&B could authenticate: WANDB_API_KEY or a netrc entry for the W&B host."""
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(env: Mapping[str, str] = os.environ) -> str:
    """WANDB_MODE when set; otherwise online only with a configured key, offline without one."""
    return env.get("WANDB_MODE") or ("online" if api_key_configured(env) else "offline")


def start_run(project: str, config: Mapping[str, Any], run_id: str, wandb_dir: Path,
              job_type: str = "trial") -> Any:
    """Start (or, under `wandb agent`, join) the W&B run for a trial."""
    import wandb  # imported here: ~1 s, and --print-config must not pay for it

    wandb_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=project, config=dict(config), id=run_id, name=run_id,
                      dir=str(wandb_dir), job_type=job_type,
                      mode=cast(Literal["online", "offline", "disabled"], wandb_mode()))
