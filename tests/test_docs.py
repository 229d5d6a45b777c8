"""The README and docs/: the README fits on a screen, every link inside the repository resolves, and every
command shown (in a ```bash block, or inline as `python ...`) is accepted by the entry point it runs.

Commands are parsed in process by the entry points' own argparse parsers: train_trial.py through
`parse_trial_args` (what its main parses with), every other script or module is run as `python` runs it,
with `ArgumentParser.parse_args` stopped once it has parsed, so nothing beyond parsing happens.
"""
from __future__ import annotations

import argparse
import re
import runpy
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dendrisweep.errors import UsageError
from dendrisweep.trial.cli import parse_trial_args
from tests.helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)
INLINE_CODE = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#* *$", re.M)
SHELL_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
ENV_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
INLINE_COMMAND = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*=\S+ )*python3? ")
CONTROL = {"&&", "||", ";", "|", "&"}
PYTHON = {"python", "python3"}
OUR_MODULES = ("analysis", "dendrisweep")
# A command shown for a cluster node: `--gpus all` names the GPUs CUDA_VISIBLE_DEVICES lists.
NODE_ENV = {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}


def test_readme_fits_on_a_screen() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move reference text to docs/"


# --- links ----------------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = heading.strip().lower()
    return "".join(c for c in text if c.isalnum() or c in "-_ ").replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor GitHub gives the page's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    """The page's link targets, outside code (a fenced block or an inline code span)."""
    return LINK.findall(INLINE_CODE.sub("", FENCE.sub("", page.read_text())))


def test_slug_follows_githubs_rules() -> None:
    assert slug("Dendritic MobileNetV3-Small (`--task mobilenet`)") == "dendritic-mobilenetv3-small---task-mobilenet"
    assert slug("Your own W&B sweep and script, offline") == "your-own-wb-sweep-and-script-offline"
    assert slug("analysis/: from hundreds of trials") == "analysis-from-hundreds-of-trials"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_inside_the_repository_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ... : outside the repository
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            broken.append(f"{target}: no heading with that anchor in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(README)}
    assert not [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]


# --- commands -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One of our entry points as a page shows it: `target` is a script path or `-m module`."""

    page: str
    line: int
    target: str
    args: list[str]
    env: dict[str, str]

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.target} {shlex.join(self.args)}"


def shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, logical line) of every ```bash block, backslash continuations joined."""
    for block in BASH_BLOCK.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        pending, start = "", first
        for offset, line in enumerate(block.group(1).splitlines()):
            if not pending:
                start = first + offset
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            yield start, pending + line
            pending = ""


def inline_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every inline code span that is a command with arguments: `python X ...`, maybe
    after NAME=value (`python -m analysis` alone names the program)."""
    prose = FENCE.sub(lambda block: "\n" * block.group().count("\n"), text)  # keeps the line numbers
    for span in INLINE_CODE.finditer(prose):
        code = " ".join(span.group().strip("`").split())
        if INLINE_COMMAND.match(code) and len(code.split()) > (3 if " -m " in f" {code}" else 2):
            yield prose.count("\n", 0, span.start()) + 1, code


def simple_commands(line: str) -> Iterator[list[str]]:
    """The simple commands of a shell line: comments dropped, shell variables given a dummy value,
    split at `&&`, `||`, `;` and `|`."""
    words = shlex.split(SHELL_VARIABLE.sub("1", line), comments=True)
    command: list[str] = []
    for word in [*words, ";"]:
        if word in CONTROL:
            if command:
                yield command
            command = []
        else:
            command.append(word)


def ours(page: Path) -> Iterator[Command]:
    """Every command in the page's bash blocks that runs one of this repository's scripts or modules."""
    text = page.read_text()
    for number, line in [*shell_lines(text), *inline_lines(text)]:
        for words in simple_commands(line):
            env = {}
            while words and ENV_PREFIX.match(words[0]):
                name, _, value = words.pop(0).partition("=")
                env[name] = value
            if len(words) < 2 or words[0] not in PYTHON:
                continue  # pip, wandb, docker, edge-impulse-blocks, cd, ...
            if words[1] == "-m":
                if words[2].split(".")[0] not in OUR_MODULES:
                    continue  # python -m venv, python -m pytest
                target, args = f"-m {words[2]}", words[3:]
            else:
                target, args = words[1], words[2:]
            # `[--entity TEAM]`: an optional part, shown used
            args = [a[1:] if a.startswith("[-") else a for a in args]
            args = [a[:-1] if a.endswith("]") and not a.startswith("[") else a for a in args]
            yield Command(str(page.relative_to(ROOT)), number, target, args, env)


COMMANDS = [command for page in PAGES for command in ours(page)]


class Parsed(Exception):
    """Raised by the stopped `parse_args` with what it parsed: the entry point accepted its arguments."""

    def __init__(self, namespace: argparse.Namespace) -> None:
        super().__init__(namespace)
        self.namespace = namespace


def parse(command: Command, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Parse the command's arguments with its entry point's own parser, and do nothing else."""
    for name, value in {**NODE_ENV, **command.env}.items():
        monkeypatch.setenv(name, value)
    if command.target == "train_trial.py":
        return parse_trial_args(command.args)
    real_parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        raise Parsed(real_parse_args(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "path", list(sys.path))  # scripts insert their folders, as python does
    before = set(sys.modules)
    try:
        if command.target.startswith("-m "):
            module = command.target[3:]
            monkeypatch.setattr(sys, "argv", [module, *command.args])
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            script = ROOT / command.target
            assert script.is_file(), f"{command}: the repository has no {command.target}"
            monkeypatch.setattr(sys, "argv", [str(script), *command.args])
            sys.path.insert(0, str(script.parent))
            runpy.run_path(str(script), run_name="__main__")
    except Parsed as parsed:
        return parsed.namespace
    finally:  # the scripts' own helper modules (bench/agents.py ...) leave with their folder
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file.startswith(str(ROOT / "bench")):
                del sys.modules[name]
    raise AssertionError(f"{command}: finished without parsing its arguments")


def test_commands_are_found_for_every_entry_point() -> None:
    targets = {c.target for c in COMMANDS}
    expected = {"train_trial.py", "agent.py", "-m analysis", "-m dendrisweep.edge_impulse",
                "-m dendrisweep.sweep.proxy", "-m dendrisweep.data.spoken"}
    assert expected <= targets, f"no command found for {expected - targets}"
    assert any(t.startswith("bench/") for t in targets)
    assert sum(c.page == "README.md" for c in COMMANDS) >= 4  # the main job's agent and analysis steps


# runpy warns when it runs a module an earlier test imported; `python -m` in a fresh process does not
@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.page}:{c.line}")
def test_every_command_shown_parses(command: Command, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    try:
        parse(command, monkeypatch)
    except UsageError as exc:
        pytest.fail(f"{command}: {exc}")
    except SystemExit as exc:  # an entry point's cli_errors turned a UsageError into exit 2
        if exc.code == 0 and "--help" in command.args:
            return
        pytest.fail(f"{command}: exit {exc.code}: {capsys.readouterr().err.strip()}")
