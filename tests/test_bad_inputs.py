"""The bad-input corpus (tests/bad_inputs/cases.yaml): one clear line, exit 2, and nothing touched.

One case per entry point runs as the real process a user starts; the others call the same main(argv) in this
process (tests.helpers.run_main) and are held to the same checks."""
from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from dendrisweep.errors import USAGE_EXIT_CODE
from tests.helpers import ROOT, run_main, run_script

CORPUS = ROOT / "tests" / "bad_inputs"
CASES: list[dict[str, str]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())
# The cases run as real processes: one per entry point, each the one that goes deepest into its program
# (torch and a model's weights; Optuna's stored study; the analysis of a stored study).
REAL = {"pretrained weights that would run code when unpickled", "another search against the existing study",
        "regenerate into an unwritable folder"}


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under the folders, by content hash (the repository's own top level by name only)."""
    files = {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
             for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}
    files.update({f"top-level:{p.name}": "" for p in ROOT.iterdir()})
    return files


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real study with finished trials, its trial folders and W&B-style files: what must not change."""
    root = tmp_path_factory.mktemp("existing")
    runs = root / "runs"
    done = run_script("agent.py", str(CORPUS / "existing_study.yaml"), "--runs-dir", str(runs), "--study",
                      "existing", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((runs / "existing" / "trials").iterdir())) == 3
    return {"root": root, "corpus": CORPUS, "runs": runs, "storage": f"sqlite:///{runs / 'existing' / 'study.db'}"}


def test_the_corpus_covers_every_entry_point_with_at_least_25_cases() -> None:
    assert len(CASES) >= 25 and len({c["name"] for c in CASES}) == len(CASES)
    programs = {shlex.split(c["run"])[0] for c in CASES}
    assert programs == {"agent.py", "train_trial.py", "-m"}
    assert sorted(shlex.split(c["run"])[0] for c in CASES if c["name"] in REAL) == sorted(programs)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_gets_one_line_exit_2_and_changes_nothing(case: dict[str, str], existing: dict[str, Any],
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    before = snapshot(existing["root"], CORPUS)
    args = shlex.split(case["run"].format(**existing))
    done = run_script(*args, timeout=120) if case["name"] in REAL else run_main(capfd, *args)
    program = "python -m analysis" if args[0] == "-m" else args[0]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == USAGE_EXIT_CODE, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), done.stderr[-2000:]
    assert case["message"] in lines[0]
    assert "Traceback" not in done.stderr and "pwned" not in done.stdout + done.stderr  # nothing was executed
    if "absent" in case:
        assert case["absent"] not in done.stdout + done.stderr
    assert snapshot(existing["root"], CORPUS) == before
