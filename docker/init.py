"""One-time preparation of the compose stack: secrets, SQS queues, Iceberg tables, seed models and features.

Run by the ``airflow-init`` service: ``init.py --secrets <folder>`` before ``airflow db migrate``
(generates the admin password, the API and JWT signing keys and the Fernet key, each in a file
readable by this user only, once), then ``init.py`` after it. Safe to run again.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path

import boto3

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import seed
from warpspeed.embedded.sqs_server import create_queues
from warpspeed.ledger.tables import ensure_tables


def write_secrets(folder: Path) -> None:
    """Generate the stack's secrets in ``folder`` (0600 files) unless they exist; print the admin password."""
    values = {
        "jwt_secret": secrets.token_urlsafe(64),
        "api_secret_key": secrets.token_urlsafe(64),
        "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "simple_auth_passwords.json": json.dumps({"admin": secrets.token_urlsafe(16)}),
    }
    for name, value in values.items():
        try:
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
    password = json.loads((folder / "simple_auth_passwords.json").read_text())["admin"]
    print(f"Airflow UI login: admin / {password} (kept in the warpspeed-secrets volume)")


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
    if sys.argv[1:2] == ["--secrets"]:
        write_secrets(Path(sys.argv[2]))
    else:
        main()
