"""Airflow's metadata database for the embedded stack: migrated once, then left alone.

``airflow db migrate`` boots Airflow (about 5 CPU seconds) even when there is nothing to do. A
database copied from a migrated template, or the one a state folder already holds, is at the
head of this Airflow's migrations already: :func:`ensure_airflow_db` reads its revision (one
``SELECT``) and runs the command only when it differs, or cannot be read.

An empty PostgreSQL database is not migrated either once one has been on this machine: after a
migration the schema and rows are dumped (``pg_dump``, the embedded server's own) into
``$XDG_CACHE_HOME/warpspeed/airflow-db/``, named by Airflow's version, its migrations' head and
``pg_dump``'s version, and the next empty database is loaded from that file (``psql``) instead.
Loading one took 0.26-0.58 CPU seconds (the server's share included), migrating one 3.7; the
test suite's sessions, benchmarks and state folders make about a dozen databases per run.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

from warpspeed.exceptions import WarpSpeedError

log = logging.getLogger(__name__)

_REVISION = re.compile(r"""^revision\s*(?::[^=]+)?=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")
_OWN_TABLES_ONLY = "simple_auth_manager"
"""The auth manager that keeps no tables: ``airflow db migrate`` then migrates Airflow's own tables only."""


def airflow_bin() -> str:
    """Return the ``airflow`` executable of this interpreter's environment."""
    return str(Path(sys.executable).with_name("airflow"))


@cache
def head_revision() -> str | None:
    """Return the head of this Airflow's migrations, read from their files (None unless exactly one)."""
    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    versions = Path(next(iter(spec.submodule_search_locations))) / "migrations" / "versions"
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if (revision := _REVISION.search(text)) is None:
            continue
        revisions.add(revision.group(1))
        if (down := _DOWN_REVISION.search(text)) is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def _rows(db_url: str, sql: str) -> list[tuple[object, ...]] | None:
    """Return the rows of one query on ``db_url`` (None: no database, or the query failed)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql)).fetchall()]
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def current_revision(db_url: str) -> str | None:
    """Return the migration revision database ``db_url`` is at (None: no database, no table, no row)."""
    rows = _rows(db_url, "SELECT version_num FROM alembic_version")
    return str(rows[0][0]) if rows is not None and len(rows) == 1 else None


def _own_tables_only(env: dict[str, str]) -> bool:
    """Tell whether ``airflow db migrate`` migrates Airflow's own tables only (no auth-manager tables)."""
    return _OWN_TABLES_ONLY in env.get("AIRFLOW__CORE__AUTH_MANAGER", _OWN_TABLES_ONLY).lower()


def is_at_head(env: dict[str, str]) -> bool:
    """Tell whether the database ``env`` points at needs no ``airflow db migrate`` (see the module's docstring)."""
    if not _own_tables_only(env):
        return False  # e.g. FAB keeps users in tables of its own, which the command migrates too
    head = head_revision()
    return head is not None and current_revision(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]) == head


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade the Airflow metadata database that ``env`` points at, unless it is at the head already."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    if is_at_head(env):
        log.info("Airflow's database is at migration %s already: no `airflow db migrate`", head_revision())
        return
    url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    dump = migrated_dump_path(url) if _own_tables_only(env) else None
    if dump is not None and dump.is_file() and _is_empty(url) and _psql(url, "--single-transaction", "-f", str(dump)):
        log.info("Airflow's database loaded from %s (migration %s): no `airflow db migrate`", dump, head_revision())
        return
    subprocess.run(
        [airflow_bin(), "db", "migrate"], env=os.environ | env, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if dump is not None and not dump.is_file():
        _save_dump(url, dump)


def migrated_dump_path(db_url: str) -> Path | None:
    """Return the file a migrated database of ``db_url``'s kind is dumped to (None: PostgreSQL only, one head)."""
    if not db_url.startswith("postgresql") or (head := head_revision()) is None:
        return None
    if (version := _pg_dump_version()) is None:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "warpspeed" / "airflow-db"
    airflow = importlib.metadata.version("apache-airflow")
    return cache / f"airflow-{airflow}-{head}-pg{version}.sql"


@cache
def _pg_dump_version() -> str | None:
    """Return the embedded PostgreSQL's ``pg_dump`` version (``16.4``), None without the binaries."""
    from warpspeed.embedded.postgres import postgres_bin_dir

    try:
        out = subprocess.run([str(postgres_bin_dir() / "pg_dump"), "--version"], capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError, WarpSpeedError):
        return None
    match = re.search(r"(\d+(?:\.\d+)*)\s*$", out.strip())
    return match.group(1) if match else None


def _client(db_url: str, program: str) -> tuple[list[str], dict[str, str]]:
    """Return a PostgreSQL client's argv (connection options) and environment (password) for ``db_url``."""
    from sqlalchemy.engine import make_url

    from warpspeed.embedded.postgres import postgres_bin_dir

    url = make_url(db_url)
    argv = [str(postgres_bin_dir() / program), "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "", "-d", url.database or ""]
    return argv, os.environ | {"PGPASSWORD": url.password or "", "PGCONNECT_TIMEOUT": "10"}


def _psql(db_url: str, *args: str) -> bool:
    """Run ``psql`` on ``db_url`` (stop at the first error); tell whether it succeeded."""
    argv, env = _client(db_url, "psql")
    done = subprocess.run([*argv, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        log.warning("psql on the Airflow database failed (%s): %s", done.returncode, done.stderr[-2000:])
    return done.returncode == 0


def _is_empty(db_url: str) -> bool:
    """Tell whether the database at ``db_url`` holds no table of its own (a dump can be loaded into it)."""
    rows = _rows(db_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN "
                         "('pg_catalog', 'information_schema')")
    return rows == [(0,)]


def _save_dump(db_url: str, dump: Path) -> None:
    """Dump the just-migrated database at ``db_url`` to ``dump`` (written whole, then renamed into place)."""
    dump.parent.mkdir(parents=True, exist_ok=True)
    partial = dump.with_name(f"{dump.name}.{os.getpid()}.tmp")
    argv, env = _client(db_url, "pg_dump")
    done = subprocess.run([*argv, "--no-owner", "--no-privileges", "-f", str(partial)], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode == 0:
        os.replace(partial, dump)
    else:
        partial.unlink(missing_ok=True)
        log.warning("no dump of the migrated Airflow database (%s): %s", done.returncode, done.stderr[-2000:])
