"""The provider's shape: imports run one way (no cycle) and every module stays small."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO_ROOT

PROVIDER = REPO_ROOT / "provider"
MAX_LINES = 400
LOOSE_MODULES = {"warpspeed", "warpspeed.exceptions", "warpspeed.cli", "warpspeed.provider_info"}
"""The only modules that sit directly in ``provider/warpspeed/``; everything else lives in a room."""
SERVICES_AND_ABOVE = ("warpspeed.operators", "warpspeed.sensors", "warpspeed.intake.service",
                      "warpspeed.planning.refusals", "warpspeed.planning.service", "warpspeed.maintenance.service",
                      "warpspeed.preprocessing.service", "warpspeed.compute.", "warpspeed.triggers")


def modules(root: Path = PROVIDER) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Return who imports whom among ``mods``, counting imports inside functions too."""
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            deps |= {c for c in candidates if c in mods and c != name}
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """Return one import cycle as a path (first == last), or ``[]``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_find_cycle_sees_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from pkg import a\n")
    assert find_cycle(import_graph(modules(tmp_path))) == ["pkg.a", "pkg.b", "pkg.a"]


def test_provider_has_no_import_cycle() -> None:
    assert find_cycle(import_graph(modules())) == []


def test_no_provider_module_is_over_400_lines() -> None:
    long = {str(p.relative_to(REPO_ROOT)): n for p in modules().values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_hooks_wrap_clients_and_triggers_import_their_hook_at_module_top() -> None:
    mods = modules()
    graph = import_graph(mods)
    for name in mods:
        if name.startswith("warpspeed.hooks."):
            upward = {d for d in graph[name] if d.startswith(SERVICES_AND_ABOVE) and d != "warpspeed.compute.base"}
            assert not upward, f"{name} imports {upward}: hooks sit below services and backends"
    tree = ast.parse(mods["warpspeed.triggers.emr"].read_text(encoding="utf-8"))
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert "warpspeed.hooks.emr" in top


def test_only_four_modules_sit_loose_in_the_package() -> None:
    loose = {name for name, path in modules().items() if path.parent == PROVIDER / "warpspeed"}
    assert loose == LOOSE_MODULES
