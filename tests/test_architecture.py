"""The package's shape, read from its own source (AST): imports go down the layers, never in circles.

docs/ARCHITECTURE.md draws the layers; this holds the code to them. Every import counts, those
inside functions included: a late import is still a dependency."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the layers, bottom first; a module may import its own layer and those below, never above
LAYERS = [
    {"zoo._version", "zoo.errors", "zoo.files", "zoo.backend", "zoo.locks", "zoo.runs", "zoo.card", "zoo.metrics",
     "zoo.ranges", "zoo.machine"},
    {"zoo.models", "zoo.data"},
    {"zoo.targets"},
    {"zoo.training", "zoo.deploy", "zoo.inspect"},
    {"zoo.serve"},
    {"zoo.cli"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for folder in ("zoo", "cli"):
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[0] == "cli":
                parts = ["zoo", "cli", *parts[1:]]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of other modules of the package (a package's __init__ importing its
    own submodules does not count: that is how a package is made)."""
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                named = [f"{base}.{alias.name}" for alias in node.names]
                # `from zoo import locks` imports the module zoo.locks, not the package's own names
                targets = named if all(n in modules for n in named) else [base, *named]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                own = path.name == "__init__.py" and target.startswith(name + ".")
                if target and target != name and not own:
                    graph[name].add(target)
    return graph


def _layer(name: str) -> int | None:
    for rank, members in enumerate(LAYERS):
        if any(name == m or name.startswith(m + ".") for m in members):
            return rank
    return None


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    sys.setrecursionlimit(10_000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


GRAPH = _imports(_modules())


def test_no_import_circles():
    assert _circles(GRAPH) == []


def test_the_circle_finder_finds_a_circle():
    """The oracle checked once: a made-up graph with a circle of three and a tail."""
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_module_has_a_layer_and_imports_go_down():
    upward = []
    for name, imported in GRAPH.items():
        if name == "zoo":  # the API's facade: it names what the layers offer, lazily
            continue
        rank = _layer(name)
        assert rank is not None, f"{name} is in no layer of docs/ARCHITECTURE.md"
        upward += [f"{name} -> {target}" for target in imported if target != "zoo" and _layer(target) > rank]
    assert upward == []


@pytest.mark.parametrize("module, allowed", [
    ("zoo.models.registry", {"zoo.errors"}),  # the bottom of the models: it imports no model
    ("zoo.runs", {"zoo.errors", "zoo.files", "zoo.locks", "zoo.backend", "zoo.card"}),  # runs know no registry
    ("zoo.metrics", set()),  # metrics know no calibration
    ("zoo.card", {"zoo.errors", "zoo.files"}),
])
def test_the_bottom_modules_import_only_what_they_must(module, allowed):
    assert GRAPH[module] <= allowed, GRAPH[module] - allowed


def test_no_module_but_the_card_spells_a_card_key():
    """card.json's own keys are read as the Card's fields: `card["labels"]` appears nowhere else."""
    import re

    keys = ("run", "model", "labels", "preprocessing", "dataset", "model_args", "metrics", "calibration",
            "training", "weights", "task_in_cluster", "distribution", "hyperparameters")
    spelled = re.compile(r"card(?:\.get\(|\[)\s*['\"](" + "|".join(keys) + r")['\"]")
    found = [f"{path.relative_to(ROOT)}: {m.group(0)}" for name, path in _modules().items() if name != "zoo.card"
             for m in spelled.finditer(path.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.slow
def test_the_release_tool_lives_outside_the_package_and_imports_down(tmp_path):
    tool = ROOT / "tools" / "rebuild_weights.py"
    tree = ast.parse(tool.read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {"zoo.deploy.exporter", "zoo.training.fit", "zoo.models.pretrained"} <= imported
    assert not [name for name, targets in GRAPH.items() for t in targets if "rebuild" in t]
    # and a plain wheel of the package carries the data folders, with no warning from setuptools;
    # built from a copy, so that nothing is written into the checkout
    import shutil

    sources = tmp_path / "src"
    sources.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, sources / name)
    for folder in ("zoo", "cli"):
        shutil.copytree(ROOT / folder, sources / folder, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path),
                             str(sources)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "would be ignored" not in result.stdout + result.stderr
    (wheel,) = tmp_path.glob("zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"zoo/inspect/templates/explain.html", "zoo/serve/templates/page.html",
            "zoo/weights/lenet5.mnist.weights.h5"} <= names
    assert not [n for n in names if n.startswith("tools/")]
