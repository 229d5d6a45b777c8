"""parameters.json type-checked by TypeScript against Edge Impulse's own types for it (edge-impulse-cli
`cli/blocks/parameter-types.ts`, which `edge-impulse-blocks push` reads the file as).

The CLI is on no package registry and its code is never copied into this repository, so the test needs a
clone of https://github.com/edgeimpulse/edge-impulse-cli (a work tree or a bare git folder) named by
EDGE_IMPULSE_CLI_SOURCE, and is skipped without one; TypeScript and the type packages the CLI builds with
come from the npm registry at the versions its package.json pins."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from dendrisweep.edge_impulse.packaging import PARAMETERS_FILE
from tests.helpers import cache_folder

SOURCE = os.environ.get("EDGE_IMPULSE_CLI_SOURCE", "")
TYPE_FILES = ("shared/parameters-json-types.ts", "cli/blocks/parameter-types.ts", "sdk/studio/sdk/model")
NPM_PACKAGES = ("typescript", "@types/node", "undici-types")  # the compiler, and what the CLI's models import

# A key absent from a JSON file reads as undefined, so the CLI's `X | undefined` fields (showIf,
# showForImplementationVersion) may be left out, as in Edge Impulse's own example blocks; all else is as declared.
CHECK = """import { MachineLearningBlockParametersJson } from './cli/blocks/parameter-types';

type FromJson<T> = T extends (infer U)[] ? FromJson<U>[]
    : T extends object ? { [K in keyof T as undefined extends T[K] ? K : never]?: FromJson<T[K]> }
                         & { [K in keyof T as undefined extends T[K] ? never : K]: FromJson<T[K]> }
    : T;

export const parameters: FromJson<MachineLearningBlockParametersJson> = %s;
"""

pytestmark = pytest.mark.skipif(not SOURCE, reason="EDGE_IMPULSE_CLI_SOURCE (a clone of edge-impulse-cli) not set")


def _read(relative: str) -> bytes:
    folder = Path(SOURCE)
    if (folder / "package.json").is_file():
        return (folder / relative).read_bytes()
    return subprocess.run(["git", "--git-dir", SOURCE, "show", f"HEAD:{relative}"], capture_output=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def check_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI's parameter types, the models they import, and a tsconfig using the compiler and type packages
    at the CLI's own versions (installed once into pytest's cache)."""
    work = tmp_path_factory.mktemp("ei-types")
    if (Path(SOURCE) / "package.json").is_file():
        for relative in TYPE_FILES:
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            copy = shutil.copytree if (Path(SOURCE) / relative).is_dir() else shutil.copy
            copy(Path(SOURCE) / relative, work / relative)
    else:
        archive = subprocess.run(["git", "--git-dir", SOURCE, "archive", "HEAD", *TYPE_FILES], capture_output=True,
                                 check=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(work, filter="data")
    pins = json.loads(_read("package.json"))
    versions = {**pins.get("dependencies", {}), **pins.get("devDependencies", {})}
    wanted = " ".join(f"{name}@{versions[name]}" for name in NPM_PACKAGES)
    npm_home = cache_folder(request, tmp_path_factory, "edge-impulse-typescript")
    stamp = npm_home / "pins.txt"
    if not stamp.is_file() or stamp.read_text() != wanted:
        done = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(npm_home),
                               *wanted.split()], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        stamp.write_text(wanted)
    modules = npm_home / "node_modules"
    (work / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {"strict": True, "noEmit": True, "skipLibCheck": True, "target": "es2020", "pretty": False,
                            "lib": ["es2020", "dom"], "moduleResolution": "node", "baseUrl": ".",
                            "typeRoots": [str(modules / "@types")],
                            "paths": {"undici-types": [str(modules / "undici-types")]}},
        "files": ["check.ts"]}))
    (work / "tsc").symlink_to(modules / ".bin" / "tsc")
    return work


def type_errors(folder: Path, parameters_json: str) -> list[str]:
    """tsc's errors for a parameters.json text, checked against the CLI's MachineLearningBlockParametersJson."""
    (folder / "check.ts").write_text(CHECK % parameters_json)
    done = subprocess.run([str(folder / "tsc"), "-p", str(folder / "tsconfig.json")], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    errors: list[str] = []
    for line in done.stdout.splitlines():  # an error's line, then its indented explanation
        if "error TS" in line:
            errors.append(line)
        elif errors and line.startswith(" "):
            errors[-1] += "\n" + line
    assert (done.returncode == 0) == (not errors), done.stdout[-2000:] + done.stderr[-2000:]
    return errors


def test_parameters_json_is_what_edge_impulses_types_declare(check_folder: Path) -> None:
    assert type_errors(check_folder, PARAMETERS_FILE.read_text()) == []


def test_the_type_check_catches_a_wrong_type_and_a_misspelled_key(check_folder: Path) -> None:
    document = json.loads(PARAMETERS_FILE.read_text())
    document["parameters"][0]["type"] = "integer"
    document["parameters"][1]["sectoin"] = "advanced"
    document["info"]["indRequiresGPU"] = True
    errors = type_errors(check_folder, json.dumps(document, indent=4))
    for wrong in ("'\"integer\"' is not assignable to type 'DSPParameterItemType'", '"sectoin"', '"indRequiresGPU"'):
        assert sum(wrong in line for line in errors) == 1, (wrong, errors)
    assert len(errors) == 3, errors
