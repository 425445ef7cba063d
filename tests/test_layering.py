"""The import graph of ``src/idportrait``, read from the source: no cycle, no upward import, no `tiny` in production.

Layers, bottom up (architecture.md): the ground floor, faces, the shard format, adapters, pipelines, methods, generate,
the jobs (which may import each other sideways, without a cycle), then the command line and the offline demo.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import idportrait

SRC = Path(idportrait.__file__).parent
LAYERS = [
    {"idportrait", "errors", "imageio", "registry", "devices", "hub", "processes"},
    {"faces"},
    {"shards"},
    {"adapters"},
    {"pipelines"},
    {"methods"},
    {"generate"},
    {"serve", "evaluation", "training", "annotate", "curate"},
    {"cli", "demo"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
TEST_ONLY = "tiny"
MAY_IMPORT_TINY = {"demo"}  # the offline demo builds tiny random models by design


def module_name(path: Path) -> str:
    parts = ["idportrait", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the idportrait modules it imports anywhere in its body (lazy imports included)."""
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in found:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def unit(module: str) -> str:
    """The layering unit of a module: its top-level package or module under idportrait."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a node list (first node repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_unit_has_a_layer(graph):
    assert {unit(m) for m in graph} - set(RANK) == {TEST_ONLY}


def test_no_module_import_cycle(graph):
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_no_package_import_cycle(graph):
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        packages.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    assert find_cycle(packages) is None, " -> ".join(find_cycle(packages))


def test_no_upward_import(graph):
    upward = [
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if unit(module) != TEST_ONLY and unit(target) != TEST_ONLY and RANK[unit(target)] > RANK[unit(module)]
    ]
    assert not upward, "\n".join(sorted(upward))


def test_production_code_never_imports_tiny(graph):
    importers = {unit(m) for m, targets in graph.items() if any(unit(t) == TEST_ONLY for t in targets)}
    assert importers <= MAY_IMPORT_TINY | {TEST_ONLY}


def test_checks_catch_what_they_look_for():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert unit("idportrait.faces.analyzer") == "faces" and unit("idportrait") == "idportrait"


def test_cli_import_stays_light():
    import subprocess
    import sys

    heavy = ("torch", "diffusers", "transformers", "gradio")
    code = f"import sys, idportrait.cli; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
