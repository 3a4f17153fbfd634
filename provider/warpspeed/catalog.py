"""One Iceberg catalog description that configures both Spark and pyiceberg.

Embedded: an Iceberg JDBC/SQL catalog in a SQLite file, shared by Spark's ``JdbcCatalog`` and
pyiceberg's ``SqlCatalog`` (both use the ``iceberg_tables`` layout). Production: the AWS Glue
Data Catalog with S3FileIO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from warpspeed.exceptions import WarpSpeedConfigError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

CatalogKind = Literal["sql", "glue"]
_KINDS: tuple[str, ...] = ("sql", "glue")


@dataclass(frozen=True)
class CatalogConfig:
    """Where the Iceberg tables live, for Spark and pyiceberg alike.

    :param name: catalog name as Spark sees it (``<name>.<namespace>.<table>``).
    :param kind: ``sql`` (SQLite file, embedded) or ``glue`` (AWS Glue Data Catalog).
    :param warehouse: warehouse root, ``file:///...`` or ``s3://...``.
    :param sqlite_path: the SQLite catalog file (``sql`` only).
    :param region: AWS region (``glue`` only).
    """

    name: str = "warpspeed"
    kind: CatalogKind = "sql"
    warehouse: str = ""
    sqlite_path: Path | None = None
    region: str | None = None
    extra_spark_conf: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise WarpSpeedConfigError(
                f"catalog kind {self.kind!r} is not supported; use one of {', '.join(_KINDS)}"
            )
        if not self.name.isidentifier():
            raise WarpSpeedConfigError(f"catalog name {self.name!r} must be a plain identifier")
        if not self.warehouse:
            raise WarpSpeedConfigError("catalog warehouse is empty: set [warpspeed] warehouse")
        if self.kind == "sql" and self.sqlite_path is None:
            raise WarpSpeedConfigError("a sql catalog needs sqlite_path (the catalog .db file)")
        if self.kind == "glue" and not self.warehouse.startswith("s3://"):
            raise WarpSpeedConfigError(
                f"a glue catalog needs an s3:// warehouse, got {self.warehouse!r}"
            )

    @classmethod
    def embedded(cls, home: Path) -> CatalogConfig:
        """Return the embedded catalog under a Warp Speed state folder."""
        return cls(
            kind="sql",
            warehouse=(home / "warehouse").resolve().as_uri(),
            sqlite_path=(home / "catalog.db").resolve(),
        )

    def spark_conf(self) -> dict[str, str]:
        """Return the Spark settings that register this catalog (plus the Iceberg extensions)."""
        prefix = f"spark.sql.catalog.{self.name}"
        conf = {
            "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
            prefix: "org.apache.iceberg.spark.SparkCatalog",
            f"{prefix}.warehouse": self.warehouse,
        }
        if self.kind == "sql":
            conf |= {
                f"{prefix}.type": "jdbc",
                f"{prefix}.uri": f"jdbc:sqlite:{self.sqlite_path}",
                f"{prefix}.jdbc.schema-version": "V1",
            }
        else:
            conf |= {
                f"{prefix}.type": "glue",
                f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
            }
        return conf | self.extra_spark_conf

    def pyiceberg_properties(self) -> dict[str, str]:
        """Return the properties that make pyiceberg open this same catalog."""
        if self.kind == "sql":
            return {"type": "sql", "uri": f"sqlite:///{self.sqlite_path}", "warehouse": self.warehouse}
        props = {"type": "glue", "warehouse": self.warehouse}
        if self.region:
            props["glue.region"] = self.region
        return props

    def load(self) -> Catalog:
        """Open the catalog with pyiceberg."""
        from pyiceberg.catalog import load_catalog

        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        return load_catalog(self.name, **self.pyiceberg_properties())

    def spark_table(self, identifier: str) -> str:
        """Return the Spark name of ``namespace.table`` in this catalog."""
        return f"{self.name}.{identifier}"
