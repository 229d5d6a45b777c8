"""The project's promises about itself: CI runs the README's test command, verbatim."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_the_linter_gives_the_same_answer_where_a_trial_has_run(tmp_path: Path) -> None:
    """A trial run in a checkout leaves wandb/, trials/ and runs/ folders beside the code; ruff must not take
    wandb/ for a package of ours and re-sort every W&B import."""
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", "*.egg-info", "build", "__pycache__",
                                                               "wandb", "trials", "runs", "artifacts", "reports"))
    (copy / "wandb" / "offline-run-20260101_000000-abcd1234" / "files").mkdir(parents=True)
    (copy / "wandb" / "debug.log").write_text("")
    (copy / "trials" / "trial-abcd1234").mkdir(parents=True)
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=copy, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]


def test_the_checks_run_in_the_locked_environment() -> None:
    """requirements-dev.txt installs under requirements.lock, so these tests run on exactly its versions (what
    the Edge Impulse block's image pins too)."""
    from importlib.metadata import PackageNotFoundError, version

    from dendrisweep.edge_impulse.packaging import LOCK_FILE, read_lock

    assert "-c requirements.lock" in (ROOT / "requirements-dev.txt").read_text().splitlines()

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    drift = {name: (locked, installed(name)) for name, locked in read_lock(LOCK_FILE).items()
             if installed(name) != locked}
    assert not drift, f"installed versions differ from requirements.lock (locked, installed): {drift}"
