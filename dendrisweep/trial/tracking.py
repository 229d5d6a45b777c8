"""Weights & Biases logging for a trial: online wherever wandb itself finds credentials, offline
otherwise, never the key itself.

Runs go to `$WANDB_DIR/wandb/` (or ./wandb/) as usual; offline runs can be uploaded later. The run's
config is the resolved setting dict and nothing else, so no secret from the environment can end up
in it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

DEFAULT_PROJECT = "dendrisweep"
Mode = Literal["online", "offline", "disabled"]


def wandb_has_credentials() -> bool:
    """Whether wandb would find credentials for its server, by its own resolution (WANDB_API_KEY,
    WANDB_IDENTITY_TOKEN_FILE, $NETRC, ~/.netrc or ~/_netrc keyed by host and port, the key `wandb login
    --host` stored), asked without prompting, contacting the server or writing anything (wandb 0.31)."""
    from wandb.errors import AuthenticationError
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    settings = wandb_setup._setup(start_service=False).settings  # env and settings files, no service
    try:
        found = wbauth.authenticate_session(host=settings.base_url, source="train_trial.py", prompt=False,
                                            update_session=False)
    except AuthenticationError:  # configured but malformed: wandb.init names the problem, we do not guess
        return True
    return found is not None


def wandb_mode(env: Mapping[str, str] = os.environ) -> Mode | None:
    """The mode to ask wandb for: None (wandb decides: WANDB_MODE, else online) wherever it would find
    credentials, so a trial under `wandb agent` logs to the sweep whatever the server; offline only
    without any (wandb.init would otherwise stop a process without a terminal on the missing key)."""
    if env.get("WANDB_MODE") or wandb_has_credentials():
        return None
    return "offline"


def logs_model(setting: str, offline: bool) -> bool:
    """`log_model`: auto logs only online (an offline run's artifact waits in its folder for `wandb sync`)."""
    return setting == "on" or (setting == "auto" and not offline)


def start_run(project: str, config: Mapping[str, Any], run_id: str, wandb_dir: Path,
              job_type: str = "trial") -> Any:
    """Start (or, under `wandb agent`, join) the W&B run for a trial."""
    import wandb  # imported here: ~1 s, and --print-config must not pay for it

    wandb_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(project=project, config=dict(config), id=run_id, name=run_id,
                      dir=str(wandb_dir), job_type=job_type,
                      mode=wandb_mode())
