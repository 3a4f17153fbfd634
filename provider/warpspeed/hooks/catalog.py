"""The Iceberg catalog connection: Airflow's ``warpspeed_catalog`` connection type, one catalog per connection.

The UI form's fields (:data:`CONNECTION_TYPE` in :mod:`warpspeed.provider_info`) are the keys
:meth:`~warpspeed.config.catalog.CatalogConfig.from_connection` reads: host is the catalog URI,
login and password the REST OAuth2 client credential, and the extra holds ``type`` (``rest``,
``glue`` or ``sql``), ``warehouse``, ``region``, ``name`` and any catalog property. A connection of
the Iceberg provider's ``iceberg`` type has the same shape and works too.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from warpspeed.config.catalog import CatalogConfig


class IcebergCatalogHook(BaseHook):
    """Open the Iceberg catalog an Airflow connection describes (for Spark and pyiceberg alike).

    :param catalog_conn_id: the connection (``[warpspeed] catalog_conn_id`` names the one tasks use).
    """

    conn_name_attr = "catalog_conn_id"
    default_conn_name = "warpspeed_catalog"
    conn_type = "warpspeed_catalog"
    hook_name = "Warp Speed Iceberg catalog"

    def __init__(self, catalog_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.catalog_conn_id = catalog_conn_id

    def get_catalog_config(self) -> CatalogConfig:
        """Return the catalog the connection describes."""
        return CatalogConfig.from_airflow_connection(self.catalog_conn_id, self.get_connection(self.catalog_conn_id))

    def get_conn(self) -> Any:
        """Open the catalog with pyiceberg."""
        return self.get_catalog_config().load()

    def test_connection(self) -> tuple[bool, str]:
        """List the catalog's namespaces (the UI's Test button)."""
        try:
            namespaces = self.get_conn().list_namespaces()
        except Exception as err:
            return False, f"{type(err).__name__}: {err}"
        return True, f"catalog reached: {len(namespaces)} namespaces"
