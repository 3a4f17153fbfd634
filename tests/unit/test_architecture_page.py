"""docs/architecture.md names real files: every path it quotes exists, and it walks the four changes."""

from __future__ import annotations

import re

from tests.paths import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "architecture.md"
ROOTS = ("provider/", "spark_jobs/", "dags/", "docs/", "tests/", "maintenance/")
"""Folders of the repository a quoted path may start with (else it is read inside ``provider/warpspeed/``)."""
FILE = re.compile(r"[\w./-]+\.(?:py|sh|md|yaml|toml)")
"""A quoted file path (a name with a folder and an ending); a proposed new folder ends in ``/`` and is no file."""


BRACES = re.compile(r"([\w./-]*)\{([\w,]+)\}([\w./-]*)")


def expanded(text: str) -> str:
    """Return ``text`` with each ``a/{b,c}/d`` written out as ``a/b/d a/c/d``."""
    return BRACES.sub(lambda m: " ".join(f"{m[1]}{part}{m[3]}" for part in m[2].split(",")), text)


def quoted_paths(text: str) -> list[str]:
    """Return every file path the page quotes in backticks or in its diagrams, with a folder."""
    text = expanded(text)
    quoted = [q for chunk in re.findall(r"`([^`\n]+)`", text) for q in FILE.findall(chunk)]
    blocks = [q for block in re.findall(r"```\n(.*?)```", text, re.S) for q in FILE.findall(block)]
    return sorted({p for p in quoted + blocks if "/" in p})


def exists(path: str) -> bool:
    """Tell whether ``path`` is a file of the repository, or of the provider package when it names a room."""
    if (REPO_ROOT / path).exists():
        return True
    return not path.startswith(ROOTS[:3]) and (REPO_ROOT / "provider" / "warpspeed" / path).exists()


def test_every_path_the_page_quotes_exists() -> None:
    paths = quoted_paths(PAGE.read_text(encoding="utf-8"))
    assert any(p.startswith("provider/") for p in paths) and any(p.startswith("spark_jobs/") for p in paths)
    assert [p for p in paths if not exists(p)] == []


def test_the_checker_sees_a_missing_path() -> None:
    text = ("`provider/warpspeed/nowhere.py`, `window/rule.py`\n"
            "```\n spark_jobs/gone.py compute/{local,none}/backend.py\n```\n")
    missing = ["compute/none/backend.py", "provider/warpspeed/nowhere.py", "spark_jobs/gone.py"]
    assert [p for p in quoted_paths(text) if not exists(p)] == missing


def test_the_page_walks_the_four_changes() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for change in ("Add an EMR Serverless backend", "Add an ONNX flavour", "Accept SQS FIFO queues",
                   "Change the window rule"):
        assert f"### {change}" in text
