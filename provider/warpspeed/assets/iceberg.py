"""The ``iceberg://`` asset URI scheme: one Airflow asset per Iceberg table, and its OpenLineage dataset.

``iceberg://<catalog>/<namespace...>/<table>``: the authority is the catalog's name as Spark sees
it (``[warpspeed]``'s catalog is ``warpspeed``), the path the table's namespace levels and name.
Registered in the provider info (``asset-uris``) like the Amazon provider's ``s3``: Airflow calls
:func:`sanitize_uri` on every such URI, :func:`create_asset` builds one, and
:func:`convert_asset_to_openlineage` names it as the operators' lineage does
(:func:`warpspeed.lineage.datasets.iceberg_table`).

:func:`table_asset` is the one way Warp Speed makes a table's asset, so producers and consumers
agree on its name too: the bundle's two default tables keep the names they always had
(``warpspeed_scores``, ``warpspeed_features``), any other table's asset is named by its URI. The
scoring window's publish task emits one event per scores table a run wrote, through the
:data:`SCORED_TABLES` alias, so a DAG scheduled on ``table_asset("warpspeed", "crm.member_scores")``
runs only when a workload wrote that table.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from warpspeed.ledger.tables import FEATURES_TABLE, SCORES_TABLE
from warpspeed.lineage.datasets import DatasetName, iceberg_table

if TYPE_CHECKING:
    from airflow.sdk import Asset, AssetAlias

log = logging.getLogger(__name__)

SCHEME = "iceberg"
DEFAULT_CATALOG = "warpspeed"
SCORED_TABLES = "warpspeed_scored_tables"
"""Name of the asset alias through which publish emits an event per scores table a window wrote."""


def table_uri(catalog: str, identifier: str) -> str:
    """Return the asset URI of table ``identifier`` (``namespace.table``) in ``catalog``."""
    namespace, _, table = identifier.rpartition(".")
    if not namespace or not table or not catalog:
        raise ValueError(f"an Iceberg table is <namespace>.<table> in a named catalog, got {catalog!r}/{identifier!r}")
    return f"{SCHEME}://{catalog.lower()}/{namespace.replace('.', '/')}/{table}"


def table_of(uri: str) -> tuple[str, str]:
    """Return ``(catalog, identifier)`` of an ``iceberg://`` URI."""
    parts = urlsplit(uri)
    levels = [p for p in parts.path.split("/") if p]
    if parts.scheme != SCHEME or not parts.netloc or len(levels) < 2:
        raise ValueError(f"{uri!r} is not iceberg://<catalog>/<namespace>/<table>")
    return parts.netloc, ".".join(levels)


LEGACY_NAMES = {
    table_uri(DEFAULT_CATALOG, SCORES_TABLE): "warpspeed_scores",
    table_uri(DEFAULT_CATALOG, FEATURES_TABLE): "warpspeed_features",
}
"""Asset names the bundle's default tables had before every table got its asset (kept: DAGs refer to them)."""


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Check an ``iceberg://`` URI: a catalog and at least a namespace and a table; drop empty levels.

    :raises ValueError: Airflow then refuses the asset, naming the form expected.
    """
    if not uri.netloc:
        raise ValueError("URI format iceberg:// must name a catalog: iceberg://<catalog>/<namespace>/<table>")
    levels = [p for p in uri.path.split("/") if p]
    if len(levels) < 2:
        raise ValueError("URI format iceberg:// must be iceberg://<catalog>/<namespace>/<table>")
    return uri._replace(netloc=uri.netloc.lower(), path="/" + "/".join(levels), query="", fragment="")


def table_asset(catalog: str, identifier: str, **kwargs: Any) -> Asset:
    """Return the asset of a table: named as :data:`LEGACY_NAMES` says, else by its URI."""
    from airflow.sdk import Asset

    uri = table_uri(catalog, identifier)
    return Asset(name=LEGACY_NAMES.get(uri, uri), uri=uri, **kwargs)


def create_asset(*, catalog: str, namespace: str, table: str, extra: dict[str, Any] | None = None) -> Asset:
    """Build the asset of ``namespace.table`` in ``catalog`` (the scheme's registered factory)."""
    return table_asset(catalog, f"{namespace}.{table}", extra=extra or {})


def scored_tables() -> AssetAlias:
    """Return the alias the scoring window's publish emits its scores tables' events through."""
    from airflow.sdk import AssetAlias

    return AssetAlias(name=SCORED_TABLES)


def dataset_of(uri: str) -> DatasetName:
    """Name the table of an ``iceberg://`` URI as the operators' lineage does.

    The catalog of ``[warpspeed]`` gives the table its real namespace (its URI, or Glue ARN);
    another catalog name is only known as ``iceberg://<catalog>``.
    """
    from warpspeed.config.settings import load_settings

    catalog_name, identifier = table_of(uri)
    try:
        catalog = load_settings().catalog
        if catalog.name.lower() == catalog_name:
            return iceberg_table(catalog, identifier)
    except Exception as err:  # settings or catalog unreadable where this runs: name the table by its URI
        log.debug("naming %s by its URI: %s", uri, err)
    return iceberg_table(None, identifier, catalog_name)


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any) -> Any:
    """Return the OpenLineage dataset of an ``iceberg://`` asset (the scheme's registered converter)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    name = dataset_of(asset.uri)
    return Dataset(namespace=name.namespace, name=name.name)
