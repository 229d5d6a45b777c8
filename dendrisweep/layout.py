"""Names of what a trial writes in its folder: shared by the trial, the agent and the analysis."""

import secrets
import string

TRIAL_PREFIX = "trial-"
RESULT_FILE = "result.json"  # the summary (status, reason, metrics, config, versions)
HISTORY_FILE = "history.jsonl"  # one JSON line per epoch, flushed as it goes
MODEL_FILE = "best_model.pt"  # state dict + resolved config (weights_only loadable)
OUT_DIR_ENV = "DENDRISWEEP_OUT_DIR"  # default --out-directory, set by the agent


def new_run_id() -> str:
    """A W&B-style run id (8 lowercase letters and digits); it also names the trial's folder."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
