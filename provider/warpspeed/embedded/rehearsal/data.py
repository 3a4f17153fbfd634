"""The rehearsal's settings and demo data: tables in the Glue catalog, models and features in S3.

What ``make airflow`` seeds into the embedded REST catalog and local folders, seeded here into the
rehearsal's Glue Data Catalog (the control plane) with its data on the S3 server: the ledger and
features tables, the demo's expression models and its MLflow model (trained here, uploaded).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import seed
from warpspeed.ledger.tables import ensure_tables
from warpspeed.storage.documents import storage_for

if TYPE_CHECKING:
    from warpspeed.embedded.rehearsal.stack import RehearsalStack


def rehearsal_settings(stack: RehearsalStack, *, credentials: bool = True, **values: str) -> WarpSpeedSettings:
    """Return settings on the rehearsal for this process.

    :param credentials: give the catalog the S3 server's credential (pyiceberg in this process, which has
        no instance profile's stand-in in its environment); False: the catalog Airflow gets, so a request
        built from it is the one the DAG's tasks build (same profile hash, no secret in it).
    """
    extra = stack.catalog_extra()
    key, secret_key = str(stack.identity.access_key_id), str(stack.identity.secret_access_key)
    secret = {"s3.access-key-id": key, "s3.secret-access-key": secret_key,
              "glue.access-key-id": key, "glue.secret-access-key": secret_key}
    catalog = CatalogConfig.from_connection("rehearsal", host=None, login=None, password=None, extra=extra)
    if credentials:
        catalog = CatalogConfig(kind="glue", warehouse=catalog.warehouse, region=catalog.region,
                                properties=dict(catalog.properties) | secret)
    return WarpSpeedSettings.from_mapping(
        {"home": str(stack.home), "storage_prefix": stack.storage_prefix, "compute_backend": "emr", **values},
        catalog=catalog)


def publish_models(stack: RehearsalStack) -> list[str]:
    """Publish the demo's models under the rehearsal's storage prefix (the MLflow one trained here)."""
    return seed.publish_seed_models(stack.storage_prefix, storage(stack))


def seed_stack(stack: RehearsalStack, tenants: list[str], accounts: tuple[int, int]) -> WarpSpeedSettings:
    """Create the tables, publish the models and write the features of ``tenants``; return the settings used."""
    settings = rehearsal_settings(stack)
    catalog = settings.catalog.load()
    ensure_tables(catalog)
    publish_models(stack)
    base, spread = accounts
    seed.write_features(catalog, seed.feature_rows(tenants, base=base, spread=spread))
    return settings


def storage(stack: RehearsalStack) -> Any:
    """Return the rehearsal's storage (window documents, run records) for this process."""
    return storage_for(stack.storage_prefix, stack.s3)


def log_object(stack: RehearsalStack, uri: str) -> str:
    """Return the text of a gzipped log object (a step's ``stderr.gz``)."""
    import gzip

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return gzip.decompress(stack.s3().get_object(Bucket=bucket, Key=key)["Body"].read()).decode(errors="replace")

