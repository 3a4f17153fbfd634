"""The embedded Iceberg catalog: Iceberg's REST catalog server with its metadata in PostgreSQL.

The server is ``org.apache.iceberg.rest.RESTCatalogServer`` from
``org.apache.iceberg:iceberg-open-api`` (classifier ``test-fixtures``), the one the official
``apache/iceberg-rest-fixture`` image runs, configured the same way (``CATALOG_*`` environment
variables) with a ``JdbcCatalog`` on the embedded PostgreSQL. Spark (``RESTCatalog``) and
pyiceberg (``rest``) speak to it exactly as to S3 Tables, Polaris, Nessie or Glue's REST
endpoint; concurrent commits are serialised by PostgreSQL and retried by Iceberg's optimistic
commit protocol.

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

    def catalog_config(self) -> CatalogConfig:
        """Return the catalog config that points Spark and pyiceberg at this server."""
        return CatalogConfig(kind="rest", uri=self.uri, warehouse=self.warehouse)


def catalog_database(home: Path) -> str:
    """Return the PostgreSQL database that holds the catalog of state folder ``home``."""
    return "iceberg_" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]


@contextmanager
def rest_catalog_server(pg: PostgresServer, home: Path, jars_dir: Path) -> Iterator[RestCatalogServer]:
    """Start the REST catalog for state folder ``home`` (warehouse ``<home>/warehouse``); stop it on exit.

    While it runs, ``<home>/catalog/rest-endpoint`` records its URL, so settings with no
    ``catalog_uri`` (the embedded default) find it from any process.
    """
    home = home.resolve()
    cp = classpath(jars_dir, REST_CATALOG_JARS)
    database = pg.create_database(catalog_database(home))
    warehouse = home / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        "CATALOG_CATALOG__IMPL": "org.apache.iceberg.jdbc.JdbcCatalog",
        "CATALOG_URI": pg.jdbc_url(database),
        "CATALOG_JDBC_USER": pg.user,
        "CATALOG_JDBC_PASSWORD": "unused-trust-auth",
        "CATALOG_JDBC_SCHEMA__VERSION": "V1",
        "CATALOG_WAREHOUSE": warehouse.as_uri(),
        "CATALOG_REST_PORT": str(port),  # -> rest.port, read by RESTCatalogServer
    }
    uri = f"http://127.0.0.1:{port}"
    args = ["-Xmx384m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp", cp, REST_CATALOG_MAIN]
    endpoint = embedded_endpoint_file(home)
    with java_server(args, ready_url=f"{uri}/v1/config", log_path=home / "logs" / "rest-catalog.log", env=env):
        server = RestCatalogServer(uri=uri, warehouse=warehouse.as_uri(), database=database)
        endpoint.parent.mkdir(parents=True, exist_ok=True)
        endpoint.write_text(json.dumps({"uri": uri, "warehouse": server.warehouse}), encoding="utf-8")
        log.info("Iceberg REST catalog on %s (metadata in PostgreSQL database %s)", uri, database)
        try:
            yield server
        finally:
            endpoint.unlink(missing_ok=True)
