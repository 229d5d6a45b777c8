"""The project's promises about itself: CI runs the README's test command, verbatim."""
from __future__ import annotations

import re

from tests.helpers import ROOT


def readme_commands() -> list[str]:
    """The one-line bash commands of the README's set-up section, in order."""
    setup = ROOT.joinpath("README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+)\n```", setup)


def test_readme_has_exactly_two_one_line_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert all("\n" not in c and c.startswith("python3 -m venv .venv && ") for c in commands)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_ci_runs_the_slow_tests_after_the_readme_test_command() -> None:
    """Every test runs in CI: the README's command leaves the slow ones out, so CI runs them next."""
    ci = ROOT.joinpath(".ci", "run").read_text().splitlines()
    assert ci.index("python -m pytest -m slow") > ci.index(readme_commands()[1])
