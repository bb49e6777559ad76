"""The import graph keeps its layers: app -> analysis -> lipmem_core, one way, gradio only in the app.

Read from the source (every `import`, including those deferred inside functions and under
TYPE_CHECKING), so a forbidden import fails here even if no test happens to execute it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lipmem_core", "analysis", "lipmem_app")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Absolute names of everything `path` imports (relative imports resolved against `name`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return found


def top(name: str) -> str:
    return name.split(".")[0]


GRAPH = {name: imports_of(name, path) for name, path in project_modules().items()}

# What each layer may not import (by top-level name).
FORBIDDEN = {
    "lipmem_core": {"analysis", "lipmem_app", "app", "gradio", "gradio_client"},
    "analysis": {"lipmem_app", "app", "gradio", "gradio_client"},
    "lipmem_app": {"app"},
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_one_way(layer):
    bad = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if top(name) == layer
        for target in targets
        if top(target) in FORBIDDEN[layer]
    )
    assert bad == []


def test_the_check_sees_every_layer_and_a_real_violation(tmp_path):
    """Guards the guard: all three packages were read, and a deferred forbidden import is caught."""
    assert {top(n) for n in GRAPH} == {"app", *PACKAGES}
    assert "lipmem_core.model.memory" in GRAPH and "analysis.addressing" in GRAPH
    assert any(top(t) == "gradio" for t in GRAPH["lipmem_app.handlers"])
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from gradio import Blocks\n    from ..x import y\n")
    assert {"gradio", "gradio.Blocks", "lipmem_core.x", "lipmem_core.x.y"} <= imports_of(
        "lipmem_core.model.probe", probe
    )


def module_cycles() -> list[list[str]]:
    """Import cycles between project modules (strongly connected components of size > 1)."""
    edges = {n: {t for t in targets if t in GRAPH and t != n} for n, targets in GRAPH.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles_between_modules():
    assert module_cycles() == []
