"""One-time preparation of the compose stack: SQS queues, Iceberg tables, seed models and features.

Run by the ``airflow-init`` service after ``airflow db migrate``; safe to run again.
"""

from __future__ import annotations

import os

import boto3
from warpspeed.embedded import seed
from warpspeed.embedded.sqs_server import create_queues
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.ledger.tables import ensure_tables


def main() -> None:
    """Create the queues, the tables and the demo models/features if missing."""
    endpoint = os.environ["WARPSPEED_SQS_ENDPOINT"]
    client = boto3.client("sqs", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION",
                                                                                   "us-east-1"))
    queue_url, dlq_url = create_queues(client, "warpspeed-requests")
    print(f"queues: {queue_url} (DLQ {dlq_url})")
    settings = WarpSpeedSettings.from_mapping(
        {k[len("AIRFLOW__WARPSPEED__"):].lower(): v for k, v in os.environ.items()
         if k.startswith("AIRFLOW__WARPSPEED__")})
    catalog = settings.catalog.load()
    print(f"tables created: {ensure_tables(catalog) or 'none (already there)'}")
    seed.publish_seed_models(settings.storage_prefix)
    tenants = seed.tenant_ids(20)
    print(f"feature rows: {seed.write_features(catalog, seed.feature_rows(tenants))}")


if __name__ == "__main__":
    main()
