"""An empty PostgreSQL database is loaded from the dump of a migrated one instead of being migrated."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from warpspeed.embedded import airflow_db
from warpspeed.embedded.airflow_db import ensure_airflow_db, head_revision, is_at_head, migrated_dump_path
from warpspeed.embedded.postgres import PostgresServer
from warpspeed.embedded.stack import airflow_env

pytestmark = pytest.mark.integration


def _schema(url: str) -> dict[str, Any]:
    """Return every table's columns, the indexes and the rows a migration writes (pools, the revision)."""
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            columns = conn.execute(sqlalchemy.text(
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")).fetchall()
            indexes = conn.execute(sqlalchemy.text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2"
            )).fetchall()
            pools = conn.execute(sqlalchemy.text("SELECT pool, slots, include_deferred FROM slot_pool")).fetchall()
            revision = conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).fetchall()
    finally:
        engine.dispose()
    return {"columns": columns, "indexes": indexes, "pools": pools, "revision": revision}


def test_an_empty_database_is_loaded_from_the_dump_of_a_migrated_one(
    tmp_path: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no dump yet: the first database is migrated
    migrated = postgres.sqlalchemy_url(postgres.create_database("airflow_dump_first"))
    dump = migrated_dump_path(migrated)
    assert dump is not None and dump.parent == tmp_path / "cache" / "warpspeed" / "airflow-db"
    assert not dump.exists()
    ensure_airflow_db(airflow_env(tmp_path / "first", None, db_url=migrated))
    assert dump.is_file() and not list(dump.parent.glob("*.tmp"))

    commands: list[list[str]] = []
    real_run = subprocess.run

    def run(argv: list[str], **kwargs: Any) -> Any:
        commands.append([Path(argv[0]).name, *argv[1:2]])
        if Path(argv[0]).name == "airflow":  # recorded, not run: the first database showed a real one
            return subprocess.CompletedProcess(argv, 0)
        return real_run(argv, **kwargs)

    monkeypatch.setattr(airflow_db.subprocess, "run", run)
    loaded = postgres.sqlalchemy_url(postgres.create_database("airflow_dump_second"))
    env = airflow_env(tmp_path / "second", None, db_url=loaded)
    ensure_airflow_db(env)
    assert [c[0] for c in commands] == ["psql"]  # loaded, not migrated
    assert is_at_head(env) and _schema(loaded)["revision"] == [(head_revision(),)]
    assert _schema(loaded) == _schema(migrated)
    assert _schema(loaded)["pools"]  # the default pool the migration wrote came along

    # a database that holds tables already is migrated, never loaded over (here: as if Airflow had a
    # newer head whose dump exists)
    monkeypatch.setattr(airflow_db, "head_revision", lambda: "a-newer-head")
    newer = migrated_dump_path(loaded)
    assert newer is not None and newer != dump
    newer.write_bytes(dump.read_bytes())
    commands.clear()
    ensure_airflow_db(env)
    assert [c[0] for c in commands] == ["airflow"]
