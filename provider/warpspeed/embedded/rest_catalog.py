"""The embedded Iceberg catalog: Iceberg's REST catalog server with its metadata in PostgreSQL.

The server is ``org.apache.iceberg.rest.RESTCatalogServer`` from
``org.apache.iceberg:iceberg-open-api`` (classifier ``test-fixtures``), the one the official
``apache/iceberg-rest-fixture`` image runs, configured the same way (``CATALOG_*`` environment
variables) with a ``JdbcCatalog`` on the embedded PostgreSQL. Spark (``RESTCatalog``) and
pyiceberg (``rest``) speak to it exactly as to S3 Tables, Polaris, Nessie or Glue's REST
endpoint; concurrent commits are serialised by PostgreSQL and retried by Iceberg's optimistic
commit protocol.

With the state folder's embedded S3 server (:mod:`warpspeed.embedded.s3_server`) the warehouse is
``s3://<bucket>/warehouse`` and the server reads and writes metadata through Iceberg's
``S3FileIO`` (``iceberg-aws`` and its bundle are on its classpath) with a key of its own. The
server hands no S3 settings to clients (its ``/v1/config`` has none): Spark and pyiceberg set
endpoint, path-style access, region and their own keys themselves (:class:`~warpspeed.config.catalog.CatalogConfig`).

The server binds its port on every interface (the fixture has no host setting); the port is a
free one chosen per start and the catalog answers only Iceberg REST calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from warpspeed.config.catalog import CatalogConfig, embedded_endpoint_file
from warpspeed.config.s3 import CATALOG_SERVER, S3FILEIO, EmbeddedS3
from warpspeed.embedded.jvm import classpath, java_server
from warpspeed.embedded.postgres import PostgresServer
from warpspeed.embedded.sqs_server import free_port

log = logging.getLogger(__name__)

REST_CATALOG_MAIN = "org.apache.iceberg.rest.RESTCatalogServer"
REST_CATALOG_JARS = "iceberg-rest"


@dataclass(frozen=True)
class RestCatalogServer:
    """A running embedded REST catalog."""

    uri: str
    warehouse: str
    database: str
    home: Path | None = None

    def catalog_config(self) -> CatalogConfig:
        """Return the catalog config that points Spark and pyiceberg at this server (and its state folder's S3)."""
        return CatalogConfig(kind="rest", uri=self.uri, warehouse=self.warehouse, embedded_home=self.home)


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


@contextmanager
def rest_catalog_server(
    pg: PostgresServer, home: Path, jars_dir: Path, s3: EmbeddedS3 | None = None
) -> Iterator[RestCatalogServer]:
    """Start the REST catalog for state folder ``home``; stop it on exit.

    :param s3: the state folder's embedded S3 server: the warehouse is ``s3://<bucket>/warehouse``
        there; without one it is the folder ``<home>/warehouse``.

    While it runs, ``<home>/catalog/rest-endpoint`` records its URL, so settings with no
    ``catalog_uri`` (the embedded default) find it from any process.
    """
    home = home.resolve()
    cp = classpath(jars_dir, REST_CATALOG_JARS)
    database = pg.create_database(catalog_database(home))
    port = free_port()
    env = {
        "CATALOG_CATALOG__IMPL": "org.apache.iceberg.jdbc.JdbcCatalog",
        "CATALOG_URI": pg.jdbc_url(database),
        "CATALOG_JDBC_USER": pg.user,
        "CATALOG_JDBC_PASSWORD": "unused-trust-auth",
        "CATALOG_JDBC_SCHEMA__VERSION": "V1",
        "CATALOG_REST_PORT": str(port),  # -> rest.port, read by RESTCatalogServer
    }
    if s3 is not None:
        env |= s3_environment(s3)
    else:
        (home / "warehouse").mkdir(parents=True, exist_ok=True)
        env["CATALOG_WAREHOUSE"] = (home / "warehouse").as_uri()
    uri = f"http://127.0.0.1:{port}"
    args = ["-Xmx384m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp", cp, REST_CATALOG_MAIN]
    endpoint = embedded_endpoint_file(home)
    with java_server(args, ready_url=f"{uri}/v1/config", log_path=home / "logs" / "rest-catalog.log", env=env):
        server = RestCatalogServer(uri=uri, warehouse=env["CATALOG_WAREHOUSE"], database=database, home=home)
        endpoint.parent.mkdir(parents=True, exist_ok=True)
        endpoint.write_text(json.dumps({"uri": uri, "warehouse": server.warehouse}), encoding="utf-8")
        log.info("Iceberg REST catalog on %s (metadata in PostgreSQL database %s)", uri, database)
        try:
            yield server
        finally:
            endpoint.unlink(missing_ok=True)
