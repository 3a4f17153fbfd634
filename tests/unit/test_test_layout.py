"""Test modules share helpers through support modules and conftests, never by importing one another.

A test module that imports another drags that module's fixtures (autouse ones too) and its imports
along, ties the two files' edits together and runs the other's module code twice under two names.
Helpers go to a support module named for what it holds (``tests/unit/emr_support.py``), fixtures
to the conftest of the folder that uses them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO_ROOT

TESTS = REPO_ROOT / "tests"


def module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def imported(path: Path, root: Path) -> set[str]:
    """Return what ``path`` imports, inside functions too, as dotted names (``from a import b``: ``a`` and ``a.b``)."""
    package = module_name(path, root).split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return names


def cross_imports(root: Path, folder: str = "tests") -> dict[str, list[str]]:
    """Return each module under ``root/folder`` that imports a test module (``test_*.py``), with what it imports."""
    paths = sorted((root / folder).rglob("*.py"))
    test_modules = {module_name(p, root) for p in paths if p.name.startswith("test_")}
    found = {}
    for path in paths:
        if hits := sorted((imported(path, root) & test_modules) - {module_name(path, root)}):
            found[str(path.relative_to(root))] = hits
    return found


def test_the_check_sees_every_way_of_importing_a_test_module(tmp_path: Path) -> None:
    unit = tmp_path / "tests" / "unit"
    unit.mkdir(parents=True)
    for init in (tmp_path / "tests" / "__init__.py", unit / "__init__.py"):
        init.write_text("")
    (unit / "test_a.py").write_text("HELPER = 1\n")
    (unit / "support.py").write_text("HELPER = 1\ntest_like_name = 2\n")
    (unit / "test_ok.py").write_text("from tests.unit.support import HELPER, test_like_name\nfrom . import support\n")
    (unit / "test_b.py").write_text("from tests.unit.test_a import HELPER\n")
    (unit / "test_c.py").write_text("def f():\n    from . import test_a\n")
    (unit / "test_d.py").write_text("import tests.unit.test_a\n")
    (unit / "test_e.py").write_text("from .test_a import HELPER\n")
    (unit / "bad_support.py").write_text("from tests.unit import test_a\n")
    assert cross_imports(tmp_path) == {
        "tests/unit/bad_support.py": ["tests.unit.test_a"],
        **{f"tests/unit/test_{m}.py": ["tests.unit.test_a"] for m in "bcde"},
    }


def test_no_module_under_tests_imports_a_test_module() -> None:
    assert cross_imports(REPO_ROOT) == {}
