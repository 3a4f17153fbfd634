"""An embedded PostgreSQL server on loopback, from the binaries the ``pgserver`` wheel ships.

No Docker, no system service: ``initdb`` and ``pg_ctl`` from the wheel run a private server
whose data folder the caller chooses, listening on 127.0.0.1 on a free TCP port (so JVM
clients reach it over JDBC as well as Python over SQLAlchemy), with no Unix socket. PostgreSQL
refuses to run as root; when this process is root the server runs as the unprivileged
``nobody`` user, which then owns the data folder.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from warpspeed.embedded.sqs_server import free_port
from warpspeed.exceptions import WarpSpeedError

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
SERVICE_USER_WHEN_ROOT = "nobody"
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def postgres_bin_dir() -> Path:
    """Return the folder of PostgreSQL executables shipped by the ``pgserver`` wheel."""
    # find_spec locates the wheel without importing it (its import has side effects we don't need).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise WarpSpeedError("the embedded PostgreSQL needs the pgserver package: run `make setup`")
    return Path(spec.origin).resolve().parent / "pginstall" / "bin"


def _check_identifier(name: str) -> str:
    if not name or not set(name) <= _IDENTIFIER_CHARS or name[0].isdigit():
        raise WarpSpeedError(f"database name {name!r}: use lower-case letters, digits and underscores")
    return name


@dataclass(frozen=True)
class PostgresServer:
    """A running embedded PostgreSQL server (trust authentication, loopback only)."""

    data_dir: Path
    host: str
    port: int
    user: str = SUPERUSER

    def sqlalchemy_url(self, db: str = "postgres") -> str:
        """Return the SQLAlchemy URL (psycopg2 driver) of database ``db``."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{_check_identifier(db)}"

    def jdbc_url(self, db: str = "postgres") -> str:
        """Return the JDBC URL of database ``db`` (PostgreSQL JDBC driver)."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{_check_identifier(db)}"

    def dsn(self, db: str = "postgres") -> str:
        """Return the libpq connection string of database ``db``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={_check_identifier(db)}"

    def create_database(self, db: str, template: str | None = None) -> str:
        """Create database ``db`` unless it exists (a copy of ``template`` if given); return its name."""
        import psycopg2

        _check_identifier(db)
        suffix = f' TEMPLATE "{_check_identifier(template)}"' if template else ""
        conn = psycopg2.connect(self.dsn())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if cur.fetchone() is None:
                    # validated identifiers: DDL takes no bind values
                    cur.execute(f'CREATE DATABASE "{db}"{suffix}')
        finally:
            conn.close()
        return db


def _service_user() -> pwd.struct_passwd | None:
    """Return the user the server runs as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(SERVICE_USER_WHEN_ROOT)


def _prepare_data_dir(data_dir: Path, owner: pwd.struct_passwd | None) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if owner is None:
        data_dir.chmod(0o700)
        return
    # The unprivileged server must reach its data folder: let others traverse (not list) the
    # ancestors, and give it the folder itself.
    for parent in data_dir.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    data_dir.chmod(0o700)


def _run(args: list[str], owner: pwd.struct_passwd | None, timeout: float = 60) -> None:
    uid, gid = (owner.pw_uid, owner.pw_gid) if owner is not None else (None, None)
    groups: list[int] | None = [] if owner is not None else None
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, cwd="/",
        user=uid, group=gid, extra_groups=groups,
    )
    if proc.returncode != 0:
        raise WarpSpeedError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")


def _running_pid(data_dir: Path) -> int | None:
    """Return the postmaster's pid if a server runs on ``data_dir`` (zombies do not count)."""
    import psutil

    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return None
    return pid if alive else None


def _stop(data_dir: Path, timeout: float = 60) -> None:
    """Stop the server on ``data_dir`` (fast shutdown) and wait until it is gone.

    A signal rather than ``pg_ctl stop``: it needs no access to the data folder, whose
    ancestors' permissions may have changed since the start (pytest resets its basetemp).
    """
    pid = _running_pid(data_dir)
    if pid is None:
        return
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while _running_pid(data_dir) is not None:
        if time.monotonic() > deadline:
            log.warning("PostgreSQL on %s did not stop in %ss; killing it", data_dir, timeout)
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def _wait_ready(server: PostgresServer, timeout: float = 30) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(server.dsn(), connect_timeout=2).close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[PostgresServer]:
    """Start PostgreSQL on a free 127.0.0.1 port with its data in ``data_dir``; stop it on exit.

    The data folder is created (``initdb``) on first use and kept, so state survives restarts.
    A server left running on the same folder by a killed process is stopped first.
    """
    data_dir = data_dir.resolve()
    bin_dir = postgres_bin_dir()
    owner = _service_user()
    _prepare_data_dir(data_dir, owner)
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data_dir)]
    if _running_pid(data_dir) is not None:
        log.warning("stopping a PostgreSQL server left running on %s", data_dir)
        _stop(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        _run([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust",
              "--encoding=UTF8", "--no-sync"], owner)
    port = free_port()
    server = PostgresServer(data_dir=data_dir, host="127.0.0.1", port=port)
    options = f"-h 127.0.0.1 -p {port} -k '' -c max_connections=200 -c synchronous_commit=off"
    _run([*pg_ctl, "-w", "-t", "60", "-l", str(data_dir / "server.log"), "-o", options, "start"], owner)
    try:
        _wait_ready(server)
        log.info("embedded PostgreSQL on %s:%s (data %s)", server.host, port, data_dir)
        yield server
    finally:
        _stop(data_dir)
