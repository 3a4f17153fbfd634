"""The embedded Iceberg catalog: Iceberg's REST catalog servlet with its metadata in PostgreSQL.

The servlet is the one of ``org.apache.iceberg.rest.RESTCatalogServer`` (``iceberg-open-api``
test fixtures, what the official ``apache/iceberg-rest-fixture`` image runs) with a
``JdbcCatalog`` on the embedded PostgreSQL, run by our launcher ``WarpspeedRestCatalog``
(``maven/iceberg-rest/WarpspeedRestCatalog.java``, compiled by ``warpspeed setup`` or on first use):
it listens on 127.0.0.1 only, on the port the state folder recorded, and every request needs
the state folder's token (``<home>/catalog/rest-token``, 0600) as a bearer token. Error answers
carry no Java stack. Spark (``RESTCatalog``) and pyiceberg (``rest``) speak to it exactly as to
S3 Tables, Polaris, Nessie or Glue's REST endpoint, with ``token`` and ``oauth2-server-uri``;
concurrent commits are serialised by PostgreSQL and retried by Iceberg's optimistic commits.

With the state folder's embedded S3 server (:mod:`warpspeed.embedded.s3_server`) the warehouse is
``s3://<bucket>/warehouse`` and the server reads and writes metadata through Iceberg's
``S3FileIO`` (``iceberg-aws`` and its bundle are on its classpath) with a key of its own. The
server hands no S3 settings to clients (its ``/v1/config`` has none): Spark and pyiceberg set
endpoint, path-style access, region and their own keys themselves (:class:`~warpspeed.config.catalog.CatalogConfig`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from warpspeed.config.catalog import OAUTH_TOKENS_PATH, CatalogConfig, embedded_endpoint_file
from warpspeed.config.s3 import CATALOG_SERVER, S3FILEIO, EmbeddedS3
from warpspeed.embedded.jvm import classpath, java_process
from warpspeed.embedded.postgres import PostgresServer
from warpspeed.embedded.server import ServerProcess
from warpspeed.embedded.state import private_dir, secret, stable_port, write_private
from warpspeed.embedded.supervisor import Supervisor, supervised
from warpspeed.exceptions import WarpSpeedConfigError

log = logging.getLogger(__name__)

REST_CATALOG_MAIN = "WarpspeedRestCatalog"
REST_CATALOG_JARS = "iceberg-rest"
LAUNCHER_DIR = "iceberg-rest-launcher"
LAUNCHER_JAR = "warpspeed-rest-launcher.jar"
LAUNCHER_SOURCE = Path(__file__).resolve().parent / "maven" / REST_CATALOG_JARS / f"{REST_CATALOG_MAIN}.java"
STAMP = "source.sha256"
"""Written next to the launcher's jar: the first 16 hex digits of the source's SHA-256 (Makefile too)."""


@dataclass(frozen=True)
class RestCatalogServer:
    """A running embedded REST catalog."""

    uri: str
    warehouse: str
    database: str
    token: str = field(default="", repr=False)
    token_file: Path | None = None
    home: Path | None = None

    def catalog_config(self) -> CatalogConfig:
        """Return the catalog config that points Spark and pyiceberg at this server (token, state folder's S3)."""
        return CatalogConfig(kind="rest", uri=self.uri, warehouse=self.warehouse, embedded_home=self.home,
                             properties={"token": self.token, "oauth2-server-uri": self.uri + OAUTH_TOKENS_PATH})


def catalog_database(home: Path) -> str:
    """Return the PostgreSQL database that holds the catalog of state folder ``home``."""
    return "iceberg_" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


def s3_environment(s3: EmbeddedS3) -> dict[str, str]:
    """Return the server's ``CATALOG_*`` settings for an ``s3://`` warehouse in ``s3``'s bucket (S3FileIO)."""
    access = s3.access(CATALOG_SERVER)
    return {
        "CATALOG_WAREHOUSE": f"s3://{s3.bucket}/warehouse",
        "CATALOG_IO__IMPL": S3FILEIO,
        "CATALOG_S3_ENDPOINT": s3.endpoint_url,
        "CATALOG_S3_PATH__STYLE__ACCESS": "true",
        "CATALOG_CLIENT_REGION": s3.region,
        "CATALOG_S3_ACCESS__KEY__ID": access.access_key_id or "",
        "CATALOG_S3_SECRET__ACCESS__KEY": access.secret_access_key or "",  # environment: not on a command line
    }


def _source_digest() -> str:
    return hashlib.sha256(LAUNCHER_SOURCE.read_bytes()).hexdigest()[:16]


def launcher_jar(jars_dir: Path) -> Path:
    """Return the jar of the compiled launcher, compiling it first if missing or out of date.

    A jar, not a folder of classes: a JVM writes no class archive for a classpath with a folder on
    it (:mod:`warpspeed.embedded.class_archive`).
    """
    target = jars_dir / LAUNCHER_DIR
    digest = _source_digest()
    stamp = target / STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest and (target / LAUNCHER_JAR).is_file():
        return target / LAUNCHER_JAR
    javac = shutil.which("javac", path=str(Path(os.environ["JAVA_HOME"]) / "bin")) if os.environ.get("JAVA_HOME") \
        else shutil.which("javac")
    if javac is None:
        raise WarpSpeedConfigError(
            f"the embedded REST catalog's launcher is not compiled ({target}) and there is no javac to compile it: "
            "install a JDK 17 (apt-get install openjdk-17-jdk-headless) and run `warpspeed setup`"
        )
    tmp = jars_dir / f".{LAUNCHER_DIR}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run([javac, "-nowarn", "-d", str(tmp / "classes"), "-cp", classpath(jars_dir, REST_CATALOG_JARS),
                           str(LAUNCHER_SOURCE)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WarpSpeedConfigError(f"javac {LAUNCHER_SOURCE.name} failed:\n{proc.stderr[-3000:]}")
    with zipfile.ZipFile(tmp / LAUNCHER_JAR, "w", zipfile.ZIP_DEFLATED) as jar:
        for cls in sorted((tmp / "classes").rglob("*.class")):
            jar.write(cls, cls.relative_to(tmp / "classes").as_posix())
    shutil.rmtree(tmp / "classes")
    (tmp / STAMP).write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process put its (identical) build there first
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("compiled the REST catalog launcher into %s", target / LAUNCHER_JAR)
    return target / LAUNCHER_JAR


def rest_catalog_process(
    pg: PostgresServer, home: Path, jars_dir: Path, s3: EmbeddedS3 | None = None
) -> tuple[ServerProcess, RestCatalogServer]:
    """Prepare the catalog of state folder ``home`` (database, token, port) and describe its server.

    :param s3: where the warehouse is (``s3://<bucket>/warehouse``); None: the folder ``<home>/warehouse``.
    """
    if pg.password_file is None:
        raise WarpSpeedConfigError("the embedded REST catalog needs a PostgreSQL with a password file")
    home = private_dir(home.resolve())
    folder = private_dir(home / "catalog")
    token_file = folder / "rest-token"
    token = secret(token_file)
    cp = classpath(jars_dir, REST_CATALOG_JARS, launcher_jar(jars_dir))
    database = pg.create_database(catalog_database(home))
    port = stable_port(folder / "port")
    env = {
        "WARPSPEED_REST_PORT": str(port),
        "WARPSPEED_REST_TOKEN_FILE": str(token_file),
        "CATALOG_CATALOG__IMPL": "org.apache.iceberg.jdbc.JdbcCatalog",
        "CATALOG_URI": pg.jdbc_url(database),
        "CATALOG_JDBC_USER": pg.user,
        "CATALOG_JDBC_PASSWORD_FILE": str(pg.password_file),
        "CATALOG_JDBC_SCHEMA__VERSION": "V1",
    }
    if s3 is not None:
        env |= s3_environment(s3)
    else:
        env["CATALOG_WAREHOUSE"] = private_dir(home / "warehouse").as_uri()
    jvm_args = ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dorg.slf4j.simpleLogger.log.org.apache.iceberg.rest.RESTCatalogServlet=off"]
    process = java_process("rest-catalog", REST_CATALOG_MAIN, cp, port=port, log_path=private_dir(home / "logs")
                           / "rest-catalog.log", ready_path="/v1/config", home=home, jars_dir=jars_dir, heap="384m",
                           jvm_args=jvm_args, env=env)
    server = RestCatalogServer(uri=f"http://127.0.0.1:{port}", warehouse=env["CATALOG_WAREHOUSE"], database=database,
                               token=token, token_file=token_file, home=home)
    return process, server


@contextmanager
def rest_catalog_server(
    pg: PostgresServer, home: Path, jars_dir: Path, supervisor: Supervisor | None = None,
    s3: EmbeddedS3 | None = None,
) -> Iterator[RestCatalogServer]:
    """Run the REST catalog of state folder ``home``; stop it on exit.

    While it runs, ``<home>/catalog/rest-endpoint`` (0600) records its URL and token file, so
    settings with no ``catalog_uri`` (the embedded default) find it from any process.

    :param supervisor: the stack's supervisor (one of its own if not given).
    :param s3: the state folder's embedded S3 server: the warehouse is ``s3://<bucket>/warehouse``
        there; without one it is the folder ``<home>/warehouse``.
    """
    endpoint = embedded_endpoint_file(home.resolve())
    describe = functools.partial(rest_catalog_process, pg, home, jars_dir, s3)
    try:
        with supervised(describe, supervisor, "warpspeed-rest-catalog") as server:
            write_private(endpoint, json.dumps({"uri": server.uri, "warehouse": server.warehouse,
                                                "token_file": str(server.token_file)}))
            log.info("Iceberg REST catalog on %s (metadata in PostgreSQL database %s)", server.uri, server.database)
            yield server
    finally:
        endpoint.unlink(missing_ok=True)
