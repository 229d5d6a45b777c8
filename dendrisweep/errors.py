"""One error type for bad input, and the wrapper that turns it into a one-line message and exit 2.

Every entry point (train_trial.py, agent.py, python -m analysis) runs inside `cli_errors`, so a
malformed YAML, an unknown setting or a broken data folder never reaches the user as a traceback.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

USAGE_EXIT_CODE = 2


class UsageError(Exception):
    """Bad input from the user: a setting, a file, a data set. Reported in one line, exit 2."""


def one_line(message: str) -> str:
    """Collapse a message to a single line so logs and CI output stay greppable."""
    return " ".join(str(message).split())


@contextmanager
def cli_errors(program: str) -> Iterator[None]:
    """Turn UsageError into `program: error: message` on stderr and exit code 2."""
    try:
        yield
    except UsageError as exc:
        print(f"{program}: error: {one_line(str(exc))}", file=sys.stderr)
        raise SystemExit(USAGE_EXIT_CODE) from None
