"""The wheel a user builds from the checkout works without it: every package is in it (a hand-listed one
once left `dendrisweep.verdict` out), and the entry points run from another folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel built from this checkout; its dependencies are the test
    environment's own (a .pth file names their folder), since they are large and already installed."""
    home = tmp_path_factory.mktemp("wheel")
    source = home / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    for package in ("dendrisweep", "analysis"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.txt", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                  "-w", str(home / "dist"), str(source)], cwd=home)
    assert built.returncode == 0, built.stderr[-2000:]
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=home).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((home / "dist").glob("dendrisweep-*.whl"))
    with zipfile.ZipFile(wheel) as archive:  # a wheel is a zip: installing is unpacking into site-packages
        archive.extractall(site)
    return python


def test_the_wheel_holds_every_package() -> None:
    packages = {str(p.parent.relative_to(ROOT)).replace(os.sep, ".") for package in ("dendrisweep", "analysis")
                for p in (ROOT / package).rglob("__init__.py")}
    assert {"dendrisweep.verdict", "dendrisweep.deploy", "analysis"} <= packages
    done = _run([sys.executable, "-c", "import json, setuptools; print(json.dumps(setuptools.find_packages("
                 "include=['dendrisweep*', 'analysis*'])))"], cwd=ROOT)
    assert set(json.loads(done.stdout)) == packages


def test_the_verdict_help_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    where = _run([str(installed), "-c", "import analysis, dendrisweep.verdict; print(analysis.__file__)"], tmp_path)
    assert where.returncode == 0, where.stderr[-2000:]
    assert str(installed.parents[1]) in where.stdout  # the wheel's copy, not the checkout's
    done = _run([str(installed), "-m", "analysis", "verdict", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--baseline" in done.stdout


def test_a_trial_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    shutil.copy(ROOT / "train_trial.py", tmp_path)  # the thin script, beside no checkout
    done = _run([str(installed), "train_trial.py", "--dendrites", "false", "--epochs", "2",
                 "--out-directory", str(tmp_path / "trials")], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = (tmp_path / "trials").glob("trial-*/result.json")
    record = json.loads(result.read_text())
    assert record["status"] == "finished" and record["epochs_run"] == 2
