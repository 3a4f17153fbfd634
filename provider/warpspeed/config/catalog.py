"""One Iceberg catalog description that configures both Spark and pyiceberg.

Three kinds, chosen by configuration (``[warpspeed] catalog_conn_id`` names an Airflow
connection; without one, the ``catalog_*`` keys of ``[warpspeed]`` apply):

- ``rest``: any Iceberg REST catalog (S3 Tables, Polaris, Nessie, Glue's REST endpoint). The
  embedded default is Iceberg's own REST catalog server on the embedded PostgreSQL
  (:mod:`warpspeed.embedded.rest_catalog`); it records its URL and token file in the state
  folder, which is where a ``rest`` catalog without a URI looks for them (the token then goes to
  Spark and pyiceberg as ``token`` plus ``oauth2-server-uri``).
- ``glue``: the AWS Glue Data Catalog with S3FileIO.
- ``sql``: an Iceberg JDBC/SQL catalog in a database (``iceberg_tables`` layout shared by Spark's
  ``JdbcCatalog`` and pyiceberg's ``SqlCatalog``): a SQLite file or a PostgreSQL database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from warpspeed.config.s3 import S3FILEIO, STACK, S3Access, embedded_access, embedded_bucket, running_embedded_s3
from warpspeed.exceptions import WarpSpeedConfigError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

CatalogKind = Literal["rest", "glue", "sql"]
_KINDS: tuple[str, ...] = ("rest", "glue", "sql")
EMBEDDED_ENDPOINT_FILE = "catalog/rest-endpoint"
"""Where, under the state folder, the running embedded REST catalog records its URL (and token file)."""
OAUTH_TOKENS_PATH = "/v1/oauth/tokens"
"""The REST catalog's OAuth2 token endpoint, relative to its URL."""
_CONNECTION_FIELDS = frozenset({"type", "uri", "warehouse", "region", "name"})
SECRET_MARKERS = ("credential", "token", "secret", "password")
"""Catalog properties with these in their name are secrets: they never go where AWS lists them (EMR step
arguments, Glue job arguments)."""
SIGNING_REGION = "rest.signing-region"
_S3_TABLES_ARN = re.compile(r"arn:aws[a-z-]*:s3tables:")
_S3_TABLES_VIA_GLUE = re.compile(r"(?P<account>\d{12}):s3tablescatalog/(?P<bucket>[a-z0-9-]+)(/.*)?")
"""A table bucket in the Glue Data Catalog (``<account>:s3tablescatalog/<bucket>``): the Glue Iceberg REST
endpoint's warehouse, or a glue catalog's ``glue.id``."""


def is_secret(key: str) -> bool:
    """Tell whether a catalog property looks like a secret (:data:`SECRET_MARKERS`)."""
    return any(marker in key.lower() for marker in SECRET_MARKERS)


def embedded_endpoint_file(home: Path) -> Path:
    """Return the file in which the embedded REST catalog of ``home`` records its URL."""
    return home / EMBEDDED_ENDPOINT_FILE


@dataclass(frozen=True)
class CatalogConfig:
    """Where the Iceberg tables live, for Spark and pyiceberg alike.

    :param name: catalog name as Spark sees it (``<name>.<namespace>.<table>``).
    :param kind: ``rest``, ``glue`` or ``sql``.
    :param warehouse: warehouse root (``file:///...``, ``s3://...``) or, for ``rest``, the
        warehouse identifier the server expects (may be empty when the server has a default).
    :param uri: ``rest``: the catalog URL (empty: the embedded server under ``embedded_home``);
        ``sql``: a SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg2://…``).
    :param sqlite_path: the SQLite catalog file (``sql`` shorthand for ``uri=sqlite:///…``).
    :param region: AWS region (``glue``; for a ``rest`` catalog with ``rest.sigv4-enabled`` it is
        the ``rest.signing-region`` unless that property is set).
    :param properties: further catalog properties given to Spark and pyiceberg alike
        (e.g. ``credential``, ``token``, ``rest.sigv4-enabled``, ``rest.signing-name``).
    :param embedded_home: state folder whose embedded REST catalog a ``rest`` config without a
        URI uses (and whose embedded S3 server an ``s3://`` warehouse of it is on).
    :param s3_component: who uses this catalog (``intake``, ``score``...): on the embedded S3
        server each component signs with a key of its own (:mod:`warpspeed.config.s3`).
    """

    name: str = "warpspeed"
    kind: CatalogKind = "rest"
    warehouse: str = ""
    uri: str = ""
    sqlite_path: Path | None = None
    region: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    extra_spark_conf: dict[str, str] = field(default_factory=dict)
    embedded_home: Path | None = None
    s3_component: str = STACK

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise WarpSpeedConfigError(
                f"catalog kind {self.kind!r} is not supported; use one of {', '.join(_KINDS)}"
            )
        if not self.name.isidentifier():
            raise WarpSpeedConfigError(f"catalog name {self.name!r} must be a plain identifier")
        if self.kind != "rest" and not self.warehouse:
            raise WarpSpeedConfigError("catalog warehouse is empty: set [warpspeed] warehouse")
        if self.kind == "sql" and self.sqlite_path is None and not self.uri:
            raise WarpSpeedConfigError(
                "a sql catalog needs a database: set [warpspeed] catalog_uri to a SQLAlchemy URL "
                "(postgresql+psycopg2://user@host:5432/db or sqlite:///path/catalog.db)"
            )
        if self.kind == "sql" and self.uri and not self.uri.startswith(("sqlite:", "postgresql")):
            raise WarpSpeedConfigError(
                f"[warpspeed] catalog_uri={self.uri!r}: a sql catalog takes sqlite:///… or postgresql+psycopg2://…"
            )
        if self.kind == "rest" and not self.uri and self.embedded_home is None:
            raise WarpSpeedConfigError(
                "a rest catalog needs its URL: set [warpspeed] catalog_uri (or the host of the "
                "catalog_conn_id connection) to e.g. https://glue.us-east-1.amazonaws.com/iceberg"
            )
        if self.kind == "rest" and self.uri and urlsplit(self.uri).scheme not in ("http", "https"):
            raise WarpSpeedConfigError(f"[warpspeed] catalog_uri={self.uri!r}: a rest catalog URL is http(s)://…")
        if self.kind == "glue" and not self.warehouse.startswith("s3://"):
            raise WarpSpeedConfigError(
                f"a glue catalog needs an s3:// warehouse, got {self.warehouse!r}"
            )

    @classmethod
    def embedded(cls, home: Path) -> CatalogConfig:
        """Return a single-process SQLite catalog under ``home`` (pyiceberg-only unit tests)."""
        return cls(
            kind="sql",
            warehouse=(home / "warehouse").resolve().as_uri(),
            sqlite_path=(home / "catalog.db").resolve(),
        )

    @classmethod
    def embedded_rest(cls, home: Path, *, s3: bool = True) -> CatalogConfig:
        """Return the default: the embedded REST catalog server of state folder ``home``.

        :param s3: its warehouse is ``s3://<bucket>/warehouse`` on the state folder's embedded S3
            server (the default), else the folder ``<home>/warehouse`` (``file://``).
        """
        home = home.resolve()
        warehouse = f"s3://{embedded_bucket(home)}/warehouse" if s3 else (home / "warehouse").as_uri()
        return cls(kind="rest", warehouse=warehouse, embedded_home=home)

    def for_component(self, component: str) -> CatalogConfig:
        """Return this catalog as ``component`` uses it (its own key on the embedded S3 server)."""
        return replace(self, s3_component=component)

    def s3_access(self) -> S3Access:
        """Return how Spark and pyiceberg reach this catalog's S3 storage.

        The embedded catalog whose warehouse is ``s3://`` or whose state folder runs an S3 server:
        that server, with :attr:`s3_component`'s key. Any other catalog: its ``s3.*`` properties
        (none: AWS).
        """
        if self.embedded_home is not None and (
                self.warehouse.startswith("s3://") or running_embedded_s3(self.embedded_home) is not None):
            return embedded_access(self.embedded_home, self.s3_component)
        return S3Access.from_properties(self.properties, self.s3_component)

    @classmethod
    def from_connection(
        cls, conn_id: str, *, host: str | None, login: str | None, password: str | None,
        extra: Mapping[str, Any] | None, schema: str | None = None, port: int | None = None,
    ) -> CatalogConfig:
        """Build the catalog from an Airflow connection's fields.

        ``extra.type`` is ``rest`` (default), ``glue`` or ``sql``; the URI is ``extra.uri`` or the
        host (``https://host[:port]/schema`` if the host has no scheme); ``extra.warehouse`` and
        ``extra.region`` as in ``[warpspeed]``; login/password become the REST OAuth2
        ``credential``; every other extra key is a catalog property for Spark and pyiceberg.
        """
        extra = dict(extra or {})
        kind = str(extra.get("type") or "rest")
        where = f"connection {conn_id!r} ([warpspeed] catalog_conn_id)"
        if kind not in _KINDS:
            raise WarpSpeedConfigError(f"{where}: extra type={kind!r}; use one of {', '.join(_KINDS)}")
        uri = str(extra.get("uri") or "")
        if not uri and host:
            uri = host if "://" in host else f"https://{host}{f':{port}' if port else ''}/{schema or ''}".rstrip("/")
        props = {str(k): str(v) for k, v in extra.items() if k not in _CONNECTION_FIELDS}
        if kind == "rest" and login and "credential" not in props:
            props["credential"] = f"{login}:{password or ''}"
        try:
            return cls(
                name=str(extra.get("name") or "warpspeed"), kind=kind,  # type: ignore[arg-type]
                warehouse=str(extra.get("warehouse") or ""), uri=uri,
                region=extra.get("region"), properties=props,
            )
        except WarpSpeedConfigError as err:
            raise WarpSpeedConfigError(f"{where}: {err}") from err

    def _embedded_endpoint(self, home: Path) -> dict[str, str]:
        endpoint = embedded_endpoint_file(home)
        try:
            doc = json.loads(endpoint.read_text(encoding="utf-8"))
            return {"uri": str(doc["uri"]), "token_file": str(doc.get("token_file") or "")}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise WarpSpeedConfigError(
                f"[warpspeed] catalog_uri is empty and no embedded REST catalog runs for {home} "
                f"({endpoint} missing): start the embedded stack (`warpspeed stack up`), or set "
                "[warpspeed] catalog_conn_id / catalog_uri to your catalog"
            ) from err
    @classmethod
    def from_airflow_connection(cls, conn_id: str, conn: Any) -> CatalogConfig:
        """Build the catalog from an Airflow ``Connection`` (:meth:`from_connection` of its fields)."""
        return cls.from_connection(conn_id, host=conn.host, login=conn.login, password=conn.password,
                                   extra=conn.extra_dejson, schema=conn.schema, port=conn.port)

    def rest_uri(self) -> str:
        """Return the REST catalog URL, looking up the running embedded server if none is set."""
        if self.uri or self.embedded_home is None:
            return self.uri
        return self._embedded_endpoint(self.embedded_home)["uri"]

    def rest_auth(self) -> dict[str, str]:
        """Return the embedded REST catalog's ``token`` and ``oauth2-server-uri`` (empty for any other catalog)."""
        if self.kind != "rest" or self.uri or self.embedded_home is None:
            return {}
        endpoint = self._embedded_endpoint(self.embedded_home)
        if not endpoint["token_file"]:
            return {}
        try:
            token = Path(endpoint["token_file"]).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise WarpSpeedConfigError(
                f"the embedded REST catalog of {self.embedded_home} needs its token, and "
                f"{endpoint['token_file']} cannot be read ({err.strerror}): run as the user who started the stack"
            ) from err
        return {"token": token, "oauth2-server-uri": endpoint["uri"] + OAUTH_TOKENS_PATH}

    def catalog_properties(self) -> dict[str, str]:
        """Return the configured properties, with ``rest.signing-region`` from ``region`` for a SigV4 REST catalog."""
        props = dict(self.properties)
        sigv4 = str(props.get("rest.sigv4-enabled", "")).lower() == "true"
        if self.kind == "rest" and sigv4 and self.region and SIGNING_REGION not in props:
            props[SIGNING_REGION] = self.region
        return props

    def _s3_tables_via_glue(self) -> re.Match[str] | None:
        """Return the Glue Data Catalog name of an S3 table bucket this catalog uses, matched (else None)."""
        name = self.warehouse if self.kind == "rest" else str(self.properties.get("glue.id", ""))
        return _S3_TABLES_VIA_GLUE.fullmatch(name) if self.kind in ("rest", "glue") else None

    def is_s3_tables(self) -> bool:
        """Tell whether the tables are Amazon S3 Tables (which maintain their tables themselves).

        Recognised by S3 Tables' own endpoint (``s3tables.<region>.amazonaws.com``), a table-bucket
        ARN warehouse (``arn:aws:s3tables:…``) or SigV4 signing for ``s3tables``; and through the
        Glue Data Catalog, AWS's recommended way: the Glue Iceberg REST endpoint's warehouse or a
        glue catalog's ``glue.id`` naming ``<account>:s3tablescatalog/<table bucket>``.
        """
        if self._s3_tables_via_glue():
            return True
        if self.kind != "rest":
            return False
        host = urlsplit(self.uri).hostname or ""
        return (host.startswith("s3tables.") or bool(_S3_TABLES_ARN.match(self.warehouse))
                or self.properties.get("rest.signing-name") == "s3tables")

    def s3_table_bucket_arn(self) -> str | None:
        """Return the S3 Tables table bucket's ARN (None: not S3 Tables, or through Glue without ``region``)."""
        if self.kind == "rest" and _S3_TABLES_ARN.match(self.warehouse):
            return self.warehouse
        match = self._s3_tables_via_glue()
        if match is None or not self.region:
            return None
        return f"arn:aws:s3tables:{self.region}:{match['account']}:bucket/{match['bucket']}"

    def _sql_url(self) -> str:
        return self.uri or f"sqlite:///{self.sqlite_path}"

    def _jdbc(self) -> dict[str, str]:
        url = urlsplit(self._sql_url())
        if url.scheme == "sqlite":
            return {"uri": f"jdbc:sqlite:{self.sqlite_path or url.path}"}
        conf = {"uri": f"jdbc:postgresql://{url.hostname}:{url.port or 5432}{url.path}"}
        if url.username:
            conf["jdbc.user"] = url.username
        if url.password:
            conf["jdbc.password"] = url.password
        return conf

    def spark_conf(self) -> dict[str, str]:
        """Return the Spark settings that register this catalog (plus the Iceberg extensions)."""
        prefix = f"spark.sql.catalog.{self.name}"
        conf = {
            "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
            prefix: "org.apache.iceberg.spark.SparkCatalog",
        }
        if self.warehouse:
            conf[f"{prefix}.warehouse"] = self.warehouse
        if self.kind == "sql":
            conf[f"{prefix}.type"] = "jdbc"
            conf[f"{prefix}.jdbc.schema-version"] = "V1"
            conf |= {f"{prefix}.{k}": v for k, v in self._jdbc().items()}
        elif self.kind == "rest":
            conf |= {f"{prefix}.type": "rest", f"{prefix}.uri": self.rest_uri()}
            conf |= {f"{prefix}.{k}": v for k, v in self.rest_auth().items()}
        else:
            conf |= {
                f"{prefix}.type": "glue",
                f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            }
        conf |= {f"{prefix}.{k}": v for k, v in self.catalog_properties().items()}
        access = self.s3_access()
        if not access.is_aws:  # an S3-compatible server: S3FileIO for tables, S3A for documents and raw data
            io = {"io-impl": S3FILEIO} | access.catalog_properties()
            conf |= {f"{prefix}.{k}": v for k, v in io.items()} | access.hadoop_conf()
        return conf | self.extra_spark_conf

    def pyiceberg_properties(self) -> dict[str, str]:
        """Return the properties that make pyiceberg open this same catalog."""
        if self.kind == "sql":
            props = {"type": "sql", "uri": self._sql_url(), "warehouse": self.warehouse}
        elif self.kind == "rest":
            props = {"type": "rest", "uri": self.rest_uri()} | self.rest_auth()
            if self.warehouse:
                props["warehouse"] = self.warehouse
        else:
            props = {"type": "glue", "warehouse": self.warehouse}
            if self.region:
                props["glue.region"] = self.region
        return props | self.catalog_properties() | self.s3_access().catalog_properties()

    def load(self) -> Catalog:
        """Open the catalog with pyiceberg."""
        from pyiceberg.catalog import load_catalog

        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return load_catalog(self.name, **self.pyiceberg_properties())

    def spark_table(self, identifier: str) -> str:
        """Return the Spark name of ``namespace.table`` in this catalog."""
        return f"{self.name}.{identifier}"
