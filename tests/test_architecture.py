"""The house stays drawn: no import circles between dendrisweep's and analysis' modules, deferred
imports included (a circle hidden inside a function still ties two modules into one); analysis only
reads, through the library's public surfaces; Optuna's internals stay in the adapter."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dendrisweep", "analysis")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Our modules this file imports: `from pkg import sub` counts as importing pkg.sub."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
            rest = [alias for alias in node.names if f"{node.module}.{alias.name}" not in modules]
            found |= submodules | ({node.module} if rest and node.module in modules else set())
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circles() -> None:
    graph = import_graph()
    assert {"dendrisweep.trial.cli", "dendrisweep.trial.run", "dendrisweep.sweep.spec"} <= set(graph)
    assert "dendrisweep.trial.options" in graph["dendrisweep.trial.run"]  # edges are really read
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_runner_sits_below_its_command_line() -> None:
    graph = import_graph()
    assert "dendrisweep.trial.run" in graph["dendrisweep.trial.cli"]
    assert not graph["dendrisweep.trial.run"] & {"dendrisweep.trial.cli", "dendrisweep.trial"}


# The layers, bottom to top, as a trial flows: a sweep YAML -> the agent's controller and launcher (sweep) ->
# trials (trial: data, a model, training) -> each deploys through deploy/ (the Edge Impulse block's
# runtime on top of it) -> records in the store -> the verdict's replicates -> analysis -> artifacts.
# A module may import its own layer and those below, never one above (deferred imports included).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("dendrisweep.contract", "dendrisweep.errors", "dendrisweep.settings", "dendrisweep.config", "dendrisweep.files",
     "dendrisweep.schedule", "dendrisweep.wandb_files"),
    ("dendrisweep.data", "dendrisweep.models", "dendrisweep.pai", "dendrisweep.device", "dendrisweep.measure"),
    ("dendrisweep",),  # the package's own light names, over the two layers above
    ("dendrisweep.deploy",),
    ("dendrisweep.edge_impulse",),
    ("dendrisweep.trial",),
    ("dendrisweep.sweep",),
    ("dendrisweep.verdict",),
    ("analysis",),
)


def layer_of(module: str) -> int:
    """The layer of the longest prefix that names `module` or a package above it."""
    found = [(len(prefix), i) for i, layer in enumerate(LAYERS) for prefix in layer
             if module == prefix or module.startswith(prefix + ".")]
    assert found, f"{module} is in no layer: add it to LAYERS"
    return max(found)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
                  for module, targets in graph.items() for target in targets if layer_of(target) > layer_of(module))


def test_the_layer_check_finds_an_import_that_runs_back_up() -> None:
    graph = {"dendrisweep.deploy.pipeline": {"dendrisweep.trial.checkpoint", "dendrisweep.data"},
             "dendrisweep.trial.run": {"dendrisweep.deploy.pipeline"}}
    assert upward_imports(graph) == ["dendrisweep.deploy.pipeline (3) imports dendrisweep.trial.checkpoint (5)"]


def test_no_import_runs_back_up_a_layer() -> None:
    graph = import_graph()
    assert "dendrisweep.deploy.onnx_export" in graph["dendrisweep.deploy.pipeline"]  # deferred imports are read
    assert upward_imports(graph) == []
    assert not any(target.startswith("dendrisweep.trial") for module, targets in graph.items()
                   if module.startswith("dendrisweep.deploy") for target in targets)


def _library_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every `from dendrisweep... import name` in a file, deferred ones included."""
    return [(node.module, alias.name) for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dendrisweep"
            for alias in node.names]


def test_analysis_imports_only_the_librarys_public_names() -> None:
    """Packages only (their __init__), and only names they list in __all__: what analysis may rely on."""
    import importlib

    packages = {name for name, path in _modules().items() if path.name == "__init__.py"}
    found = []
    for path in sorted((ROOT / "analysis").rglob("*.py")):
        for module, name in _library_imports(path):
            public = module in packages and name in importlib.import_module(module).__all__
            if not public:
                found.append(f"{path.name}: from {module} import {name}")
    assert found == []


def test_analysis_runs_nothing_itself() -> None:
    """Training, replicates and exports run in the library; analysis starts no process and no agent loop."""
    for path in sorted((ROOT / "analysis").rglob("*.py")):
        text = path.read_text()
        assert "subprocess" not in text and "import os" not in text, path.name
        for module, _ in _library_imports(path):
            assert not any(part in module for part in ("sweep.launch", "sweep.controller", "replicates")), path.name


def test_optuna_internals_stay_in_the_adapter() -> None:
    """Optuna's table names and its storage classes appear in optuna_adapter.py only."""
    internals = ("BaseStorage", "RDBStorage", "GrpcStorageProxy", "trial_user_attributes", "study_user_attributes",
                 "distribution_json", "system_attrs", "_storage", "_trial_id", "_study_id")
    adapter = ROOT / "dendrisweep" / "sweep" / "optuna_adapter.py"

    def uses(path: Path) -> list[str]:
        return [word for word in internals if re.search(rf"(?<!\w){word}(?!\w)", path.read_text())]

    offenders = [f"{path.relative_to(ROOT)}: {word}" for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                 if path != adapter for word in uses(path)]
    assert offenders == []
    assert uses(adapter) == list(internals)  # the words do name what the adapter uses


def test_public_surfaces_resolve_without_loading_torch() -> None:
    """Every name a package's __init__ promises is there; naming them costs no heavy import."""
    code = ("import sys, analysis, dendrisweep, dendrisweep.trial, dendrisweep.sweep, dendrisweep.edge_impulse\n"
            "import dendrisweep.deploy, dendrisweep.verdict\n"
            "assert 'torch' not in sys.modules and 'wandb' not in sys.modules, 'eager heavy import'\n"
            "for package in (analysis, dendrisweep, dendrisweep.trial, dendrisweep.sweep, dendrisweep.edge_impulse,\n"
            "                dendrisweep.deploy, dendrisweep.verdict):\n"
            "    missing = [name for name in package.__all__ if getattr(package, name, None) is None]\n"
            "    assert not missing, (package.__name__, missing)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
