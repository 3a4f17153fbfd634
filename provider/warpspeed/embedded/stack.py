"""The embedded stack: environment for Airflow subprocesses and one-time preparation."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from warpspeed.config.s3 import EmbeddedS3, embedded_bucket
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.airflow_db import airflow_bin
from warpspeed.embedded.postgres import PostgresServer, embedded_postgres
from warpspeed.embedded.rest_catalog import RestCatalogServer, rest_catalog_server
from warpspeed.embedded.s3_server import LocalS3, embedded_s3
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.sqs_server import LocalSqs, queues_on, sqs_process
from warpspeed.embedded.state import private_dir
from warpspeed.embedded.supervisor import Supervisor, start_described

AWS_CONN_ID = "warpspeed_aws"
DAGS_TEST_ENV = {"AIRFLOW__WARPSPEED__WINDOW_DEADLINE_MINUTES": "0"}
"""What ``airflow dags test`` of the scoring DAG needs on Airflow 3.3.2: no Deadline Alert (it exits 1 after a
successful run of a DAG with one, apache/airflow#73428; the alert needs a scheduler anyway)."""


def default_dags_folder() -> Path:
    """Return the DAG bundle to run: ``$WARPSPEED_DAGS_FOLDER``, else ``./dags`` of the working folder."""
    return Path(os.environ.get("WARPSPEED_DAGS_FOLDER") or Path.cwd() / "dags").resolve()


def airflow_env(
    home: Path, sqs: LocalSqs | None, dags_folder: Path | None = None, *, db_url: str
) -> dict[str, str]:
    """Return the environment that runs Airflow against the embedded stack under ``home``.

    :param db_url: SQLAlchemy URL of Airflow's metadata database, e.g.
        :meth:`warpspeed.embedded.postgres.PostgresServer.sqlalchemy_url` of the embedded server.
    """
    airflow_home = home / "airflow"
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or default_dags_folder()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_PRE_PING": "True",  # reconnect after a PostgreSQL restart
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__WARPSPEED__HOME": str(home),
        "AIRFLOW__WARPSPEED__AWS_CONN_ID": AWS_CONN_ID,
        "WARPSPEED_HOME": str(home),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if sqs is not None:
        env |= {
            f"AIRFLOW_CONN_{AWS_CONN_ID.upper()}": sqs.airflow_connection(),
            "AIRFLOW__WARPSPEED__QUEUE_URL": sqs.queue_url,
            "AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL": sqs.dead_letter_queue_url,
        }
    return env


@dataclass(frozen=True)
class EmbeddedStack:
    """The embedded servers of one state folder, running (and supervised: see :attr:`supervisor`)."""

    home: Path
    postgres: PostgresServer
    sqs: LocalSqs
    catalog: RestCatalogServer
    airflow_db_url: str
    supervisor: Supervisor
    s3: LocalS3 | None = None
    """The state folder's S3 server and its counting proxy (None: storage in ``file://`` folders)."""

    def airflow_env(self, dags_folder: Path | None = None) -> dict[str, str]:
        """Return the environment that runs Airflow on these servers (``file://`` storage without an S3 server)."""
        env = airflow_env(self.home, self.sqs, dags_folder, db_url=self.airflow_db_url)
        if self.s3 is None:
            env["AIRFLOW__WARPSPEED__STORAGE_PREFIX"] = (self.home / "storage").as_uri()
        return env


def private_state_folder(home: Path) -> Path:
    """Create state folder ``home`` and its ``run/`` and ``logs/`` folders, all 0700; return it resolved."""
    home = private_dir(home.resolve())
    private_dir(home / "run")
    private_dir(home / "logs")
    return home


@contextmanager
def embedded_storage(
    home: Path, jars_dir: Path, s3: bool, supervisor: Supervisor | None = None
) -> Iterator[LocalS3 | None]:
    """Run the S3 server of state folder ``home`` when ``s3`` (else yield None: ``file://`` storage)."""
    if not s3:
        yield None
        return
    with embedded_s3(home, jars_dir, supervisor=supervisor) as server:
        yield server


def _endpoint(storage: LocalS3 | None) -> EmbeddedS3 | None:
    return storage.endpoint if storage is not None else None


@contextmanager
def embedded_stack(home: Path, jars_dir: Path, *, s3: bool = True) -> Iterator[EmbeddedStack]:
    """Start the S3 server, PostgreSQL (``<home>/postgres``), the REST catalog on it and the SQS server.

    Airflow's metadata database is ``airflow`` on that PostgreSQL; the catalog keeps its metadata
    there too, its data in the state folder's bucket on the S3 server (objects under
    ``<home>/s3``); SQS keeps its messages in ``<home>/sqs``. One
    :class:`~warpspeed.embedded.supervisor.Supervisor` starts the servers and restarts any that dies.

    :param s3: run the S3 server (settings with a ``file://`` storage prefix need none: the
        warehouse is then the folder ``<home>/warehouse``).
    """
    home = private_state_folder(home)
    supervisor = Supervisor()
    try:
        def describe_sqs() -> tuple[ServerProcess, None]:
            return sqs_process(jars_dir, home / "sqs"), None

        spawned = describe_sqs()
        supervisor.start_server(spawned[0], wait=False)  # starts while the others do
        with (
            embedded_storage(home, jars_dir, s3, supervisor) as storage,
            embedded_postgres(home / "postgres", supervisor) as pg,
            rest_catalog_server(pg, home, jars_dir, supervisor, _endpoint(storage)) as catalog,
        ):
            sqs, _ = start_described(supervisor, describe_sqs, spawned=spawned)
            yield EmbeddedStack(home, pg, queues_on(f"http://127.0.0.1:{sqs.port}"), catalog,
                                pg.sqlalchemy_url(pg.create_database("airflow")), supervisor, storage)
    finally:
        supervisor.close()


@contextmanager
def embedded_catalog(home: Path, jars_dir: Path, *, s3: bool = True) -> Iterator[RestCatalogServer]:
    """Start the S3 server, PostgreSQL (``<home>/postgres``) and the REST catalog on it; stop all on exit.

    Enough for tools that only read and write tables and documents (benchmarks, scripts):
    settings whose ``home`` is this folder find the catalog and the S3 server through their
    endpoint files.
    """
    home = private_state_folder(home)
    supervisor = Supervisor()
    try:
        with (
            embedded_storage(home, jars_dir, s3, supervisor) as storage,
            embedded_postgres(home / "postgres", supervisor) as pg,
            rest_catalog_server(pg, home, jars_dir, supervisor, _endpoint(storage)) as catalog,
        ):
            yield catalog
    finally:
        supervisor.close()


@contextmanager
def scratch_settings(*, local_documents: bool = False, **values: str) -> Iterator[WarpSpeedSettings]:
    """Yield settings on a new temporary state folder with its embedded catalog running; remove both on exit.

    :param local_documents: keep documents (and models) in ``<home>/storage`` (``file://``) rather
        than in the state folder's S3 bucket: for code that hands model folders to libraries
        that read local paths (MLflow, Spark ML in a single process).
    :param values: other ``[warpspeed]`` keys (e.g. ``spark_master``).
    """
    with tempfile.TemporaryDirectory(prefix="warpspeed-scratch-") as tmp:
        local = {"storage_prefix": (Path(tmp) / "storage").as_uri()} if local_documents else {}
        settings = WarpSpeedSettings.from_mapping({"home": tmp, **local, **values})
        with embedded_catalog(settings.home, settings.jars_dir, s3=uses_embedded_s3(settings)):
            yield settings


def uses_embedded_s3(settings: WarpSpeedSettings) -> bool:
    """Tell whether ``settings`` keep documents or tables on the state folder's embedded S3 server."""
    bucket = f"s3://{embedded_bucket(settings.home)}/"
    return settings.storage_prefix.startswith(bucket) or settings.catalog.warehouse.startswith(bucket)


def dags_test(dag_id: str, logical_date: str, env: dict[str, str], log_path: Path) -> int:
    """Run ``airflow dags test`` with its output in ``log_path`` (:data:`DAGS_TEST_ENV` first); return the exit code."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as fh:
        proc = subprocess.run(
            [airflow_bin(), "dags", "test", dag_id, logical_date],
            env=os.environ | DAGS_TEST_ENV | env, stdout=fh, stderr=subprocess.STDOUT, check=False,
        )
    return proc.returncode
