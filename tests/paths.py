"""Paths of this checkout that tests pass explicitly (the provider itself never resolves them)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DAGS = REPO_ROOT / "dags"
BUNDLE_CONFIG = DAGS / "config"
JARS_DIR = REPO_ROOT / ".jars"
