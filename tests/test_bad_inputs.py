"""The bad-input corpus (tests/bad_inputs/cases.yaml): one clear line, exit 2, and nothing touched."""
from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from dendrisweep.errors import USAGE_EXIT_CODE
from tests.helpers import ROOT, run_script

CORPUS = ROOT / "tests" / "bad_inputs"
CASES: list[dict[str, str]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())


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


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_gets_one_line_exit_2_and_changes_nothing(case: dict[str, str], existing: dict[str, Any]) -> None:
    before = snapshot(existing["root"], CORPUS)
    args = shlex.split(case["run"].format(**existing))
    done = run_script(*args, timeout=120)
    program = "python -m analysis" if args[0] == "-m" else args[0]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == USAGE_EXIT_CODE, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), done.stderr[-2000:]
    assert case["message"] in lines[0]
    assert "Traceback" not in done.stderr and "pwned" not in done.stdout + done.stderr  # nothing was executed
    if "absent" in case:
        assert case["absent"] not in done.stdout + done.stderr
    assert snapshot(existing["root"], CORPUS) == before
