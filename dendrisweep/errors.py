"""One error type for bad input, and the wrapper that turns it into a one-line message and exit 2.

Every entry point (train_trial.py, agent.py, python -m analysis, the data and block commands) parses
with `ArgumentParser` and runs inside `cli_errors`, so a bad flag, a malformed YAML, an unknown
setting or a broken data folder never reaches the user as a traceback or argparse's usage block.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

USAGE_EXIT_CODE = 2


class UsageError(Exception):
    """Bad input from the user: a setting, a file, a data set. Reported in one line, exit 2."""


class ExportError(Exception):
    """An exported model would not behave like the trained one (in onnxruntime, or after the
    deployment chain); the command that made it fails with exit 1 and this message."""


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


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are UsageErrors, so they come out as one line through `cli_errors`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def positive(kind: Callable[[str], int | float]) -> Callable[[str], int | float]:
    """An argparse type: a number of `kind` above zero, or a one-line UsageError."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise UsageError(f"expected a positive number, got {text!r}") from None
        if value <= 0:
            raise UsageError(f"expected a positive number, got {text!r}")
        return value
    return parse
