"""An embedded PostgreSQL server on loopback, from the binaries the ``pgserver`` wheel ships.

No Docker, no system service: ``initdb`` and ``postgres`` from the wheel run a private server
whose folder the caller chooses (``<home>/postgres``)::

    data/          the cluster (PGDATA), 0700
    superuser.pw   the ``postgres`` superuser's password (0600), for administration only
    app.pw         the password of ``warpspeed``, the non-superuser role Airflow and the catalog use
    port           the port, chosen once and kept
    server.log

It listens on 127.0.0.1 only (no Unix socket) and every login needs a password
(``scram-sha-256``; no ``trust``). ``synchronous_commit`` is on: an acknowledged commit survives a
crash (docs/ops.md has the measured cost). ``postgres`` runs in the foreground (no ``pg_ctl``), so
the process the supervisor holds is the postmaster and the parent-death signal reaches it.

PostgreSQL refuses to run as root. As root, it runs inside a user namespace in which it is
``nobody`` (``unshare --map-user=65534``): the files stay owned by the invoking user, no folder
is chowned or opened to others, and it works from a 0700 home such as ``/root``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.state import LOOPBACK, private_dir, secret, stable_port
from warpspeed.embedded.supervisor import Supervisor, supervised
from warpspeed.exceptions import WarpSpeedError

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
APP_USER = "warpspeed"
NOBODY = 65534
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def postgres_bin_dir() -> Path:
    """Return the folder of PostgreSQL executables shipped by the ``pgserver`` wheel."""
    # find_spec locates the wheel without importing it (its import has side effects we don't need).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise WarpSpeedError("the embedded PostgreSQL needs the pgserver package: install "
                             "warpspeed-airflow-provider[embedded] (in a checkout: make setup)")
    return Path(spec.origin).resolve().parent / "pginstall" / "bin"


def _check_identifier(name: str) -> str:
    if not name or not set(name) <= _IDENTIFIER_CHARS or name[0].isdigit():
        raise WarpSpeedError(f"database name {name!r}: use lower-case letters, digits and underscores")
    return name


@functools.cache
def _user_namespaces_work() -> bool:
    try:
        out = subprocess.run(["unshare", f"--map-user={NOBODY}", f"--map-group={NOBODY}", "--", "id", "-u"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == str(NOBODY)


def as_server_user(argv: list[str]) -> list[str]:
    """Return ``argv`` as PostgreSQL may run it: unchanged, or as root inside a user namespace as nobody."""
    if os.geteuid() != 0:
        return argv
    if not _user_namespaces_work():
        raise WarpSpeedError(
            "PostgreSQL cannot run as root, and this host does not allow user namespaces "
            "(`unshare --map-user=65534` failed), which is how the embedded stack runs it as root: "
            "run as a normal user"
        )
    return ["unshare", f"--map-user={NOBODY}", f"--map-group={NOBODY}", "--", *argv]


@dataclass(frozen=True)
class PostgresServer:
    """A running embedded PostgreSQL server, as the non-superuser role :data:`APP_USER` reaches it."""

    data_dir: Path
    """The cluster ``initdb`` made (``<folder>/data``), kept across restarts."""
    host: str
    port: int
    """The port recorded on first start and kept (a restarted server listens on it again)."""
    user: str = APP_USER
    password: str = field(default="", repr=False)
    """The password of ``user`` (kept out of ``repr``)."""
    password_file: Path | None = None
    """The 0600 file holding ``password``, for servers that read it from a file (the REST catalog)."""

    def sqlalchemy_url(self, db: str = "postgres") -> str:
        """Return the SQLAlchemy URL (psycopg2 driver) of database ``db``, password included."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{_check_identifier(db)}"

    def jdbc_url(self, db: str = "postgres") -> str:
        """Return the JDBC URL of database ``db`` (PostgreSQL JDBC driver; the password goes apart)."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{_check_identifier(db)}"

    def dsn(self, db: str = "postgres") -> str:
        """Return the libpq connection string of database ``db``, password included."""
        return (f"host={self.host} port={self.port} user={self.user} password={self.password} "
                f"dbname={_check_identifier(db)}")

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


def _stop_leftover(data_dir: Path, timeout: float = 60) -> None:
    """Stop a server a killed process left running on ``data_dir`` (fast shutdown)."""
    pid = _running_pid(data_dir)
    if pid is None:
        return
    log.warning("stopping a PostgreSQL server left running on %s (pid %d)", data_dir, pid)
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while _running_pid(data_dir) is not None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def _init_cluster(folder: Path, data_dir: Path, superuser_pw: Path) -> None:
    if (folder / "PG_VERSION").exists():
        raise WarpSpeedError(
            f"{folder} holds a PostgreSQL cluster made by an older Warp Speed (trust authentication, no "
            "password): delete the state folder (`make clean`) or that folder, and the stack makes a new one"
        )
    args = [str(postgres_bin_dir() / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=scram-sha-256",
            f"--pwfile={superuser_pw}", "--encoding=UTF8", "--no-sync"]
    proc = subprocess.run(as_server_user(args), capture_output=True, text=True, timeout=300, check=False, cwd="/")
    if proc.returncode != 0:
        raise WarpSpeedError(f"initdb failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")


def _login_works(host: str, port: int, password: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(host=host, port=port, user=SUPERUSER, password=password, dbname="postgres",
                         connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True


def _ensure_app_role(host: str, port: int, superuser_password: str, password: str) -> None:
    """Create (or reset the password of) the non-superuser role that Airflow and the catalog log in as."""
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user=SUPERUSER, password=superuser_password, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            # psycopg2 quotes the password client-side: DDL takes no server-side bind values
            cur.execute(f"{verb} ROLE {APP_USER} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD %s", (password,))
    finally:
        conn.close()


def postgres_process(folder: Path) -> tuple[ServerProcess, PostgresServer]:
    """Prepare ``folder`` (``initdb`` on first use) and describe its server; start nothing."""
    folder = private_dir(folder.resolve())
    data_dir = folder / "data"
    superuser_pw = folder / "superuser.pw"
    superuser_password = secret(superuser_pw)
    app_pw = folder / "app.pw"
    password = secret(app_pw)
    _stop_leftover(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        _init_cluster(folder, data_dir, superuser_pw)
    port = stable_port(folder / "port")
    argv = as_server_user([str(postgres_bin_dir() / "postgres"), "-D", str(data_dir), "-h", LOOPBACK,
                           "-p", str(port), "-k", "", "-c", "max_connections=200",
                           "-c", "password_encryption=scram-sha-256", "-c", "synchronous_commit=on"])
    process = ServerProcess(
        name="postgres", command=lambda: list(argv), port=port, log_path=folder / "server.log",
        ready=lambda: _login_works(LOOPBACK, port, superuser_password),
        death_signal=signal.SIGINT, stop_signal=signal.SIGINT, identity=str(folder),
    )
    server = PostgresServer(data_dir=data_dir, host=LOOPBACK, port=port, password=password, password_file=app_pw)
    return process, server


@contextmanager
def embedded_postgres(folder: Path, supervisor: Supervisor | None = None) -> Iterator[PostgresServer]:
    """Run PostgreSQL with its cluster, passwords and port under ``folder``; stop it on exit.

    The cluster is made (``initdb``) on first use and kept, so state survives restarts; so is
    the port. A server left running on the same folder by a killed process is stopped first.

    :param supervisor: the stack's supervisor (one of its own if not given): it starts the
        server and restarts it on the same port if it dies.
    """
    folder = Path(folder).resolve()
    with supervised(functools.partial(postgres_process, folder), supervisor, "warpspeed-postgres") as server:
        _ensure_app_role(server.host, server.port, secret(folder / "superuser.pw"), server.password)
        log.info("embedded PostgreSQL on %s:%s (cluster %s)", server.host, server.port, server.data_dir)
        yield server
