"""Airflow's metadata database for the embedded stack: migrated once, then left alone.

``airflow db migrate`` boots Airflow (about 5 CPU seconds) even when there is nothing to do. A
database copied from a migrated template, or the one a state folder already holds, is at the
head of this Airflow's migrations already: :func:`ensure_airflow_db` reads its revision (one
``SELECT``) and runs the command only when it differs, or cannot be read.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

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


def current_revision(db_url: str) -> str | None:
    """Return the migration revision database ``db_url`` is at (None: no database, no table, no row)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return str(rows[0][0]) if len(rows) == 1 else None


def is_at_head(env: dict[str, str]) -> bool:
    """Tell whether the database ``env`` points at needs no ``airflow db migrate`` (see the module's docstring)."""
    if _OWN_TABLES_ONLY not in env.get("AIRFLOW__CORE__AUTH_MANAGER", _OWN_TABLES_ONLY).lower():
        return False  # e.g. FAB keeps users in tables of its own, which the command migrates too
    head = head_revision()
    return head is not None and current_revision(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]) == head


def ensure_airflow_db(env: dict[str, str]) -> None:
    """Create or upgrade the Airflow metadata database that ``env`` points at, unless it is at the head already."""
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    if is_at_head(env):
        log.info("Airflow's database is at migration %s already: no `airflow db migrate`", head_revision())
        return
    subprocess.run(
        [airflow_bin(), "db", "migrate"], env=os.environ | env, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
