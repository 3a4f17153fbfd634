"""``ensure_airflow_db`` migrates a database unless it is at the head of this Airflow's migrations."""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from warpspeed.embedded import airflow_db
from warpspeed.embedded.airflow_db import ensure_airflow_db, head_revision


def _alembic_heads() -> list[str]:
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations
    config = Config()
    config.set_main_option("script_location", str(Path(next(iter(spec.submodule_search_locations))) / "migrations"))
    return list(ScriptDirectory.from_config(config).get_heads())


def test_the_head_read_from_the_migration_files_is_alembics_head() -> None:
    assert [head_revision()] == _alembic_heads()


def _env(tmp_path: Path, revision: str | None, **extra: str) -> dict[str, str]:
    db = tmp_path / "airflow.db"
    if revision is not None:
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    return {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
            **extra}


@pytest.fixture
def migrations(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the commands ``ensure_airflow_db`` runs instead of running them."""
    calls: list[list[str]] = []

    def run(argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv[1:])
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(airflow_db.subprocess, "run", run)
    return calls


def test_a_database_at_the_head_is_not_migrated_again(tmp_path: Path, migrations: list[list[str]]) -> None:
    ensure_airflow_db(_env(tmp_path, head_revision()))
    assert migrations == []
    assert (tmp_path / "airflow").is_dir()


@pytest.mark.parametrize("revision", [None, "older"], ids=["new database", "older revision"])
def test_a_new_or_older_database_is_migrated(
    tmp_path: Path, migrations: list[list[str]], revision: str | None
) -> None:
    ensure_airflow_db(_env(tmp_path, revision))
    assert migrations == [["db", "migrate"]]


def test_an_auth_manager_with_tables_of_its_own_is_always_migrated(
    tmp_path: Path, migrations: list[list[str]]
) -> None:
    fab = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    ensure_airflow_db(_env(tmp_path, head_revision(), AIRFLOW__CORE__AUTH_MANAGER=fab))
    assert migrations == [["db", "migrate"]]
