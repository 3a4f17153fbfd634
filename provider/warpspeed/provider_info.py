"""Provider metadata for Airflow's ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from warpspeed import __version__

DOCUMENTATION_URL = "https://github.com/warpspeed-data/warpspeed-airflow-provider/tree/main/docs"
"""The provider's documentation (the repository's docs/; also the wheel's Documentation Project-URL)."""


def _option(description: str, default: str | None, example: str | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": None,
        "type": "string",
        "example": example,
        "default": default,
    }


CONFIG_OPTIONS: dict[str, dict[str, Any]] = {
    "home": _option("Local state folder (embedded catalog, storage). Empty: $WARPSPEED_HOME or "
                    "~/.warpspeed.", "", "/var/lib/warpspeed"),
    "storage_prefix": _option("Where manifests, models and summaries live. Empty: <home>/storage.",
                              "", "s3://my-bucket/warpspeed"),
    "catalog_conn_id": _option("Airflow connection of the Iceberg catalog (type warpspeed_catalog, or the Iceberg "
                               "provider's iceberg: host the catalog URL, extra type rest, glue or sql). Empty: the "
                               "catalog_* keys below.", "",
                               "warpspeed_catalog"),
    "catalog_type": _option("Iceberg catalog: rest (default; empty catalog_uri: the embedded REST catalog "
                            "server of the state folder), glue or sql.", "rest", "glue"),
    "catalog_uri": _option("rest: the catalog URL; sql: a SQLAlchemy URL or a SQLite file. Empty (rest): "
                           "the embedded REST catalog.", "", "https://glue.us-east-1.amazonaws.com/iceberg"),
    "warehouse": _option("Iceberg warehouse root. Empty: <home>/warehouse.", "",
                         "s3://my-bucket/warehouse"),
    "region": _option("AWS region of the SQS, S3, EMR and Glue calls and of the Glue catalog. Empty: the AWS "
                      "connection's. A task's region_name argument overrides it.", "", "eu-west-1"),
    "aws_conn_id": _option("Airflow AWS connection for SQS, S3, EMR and Glue. A task's aws_conn_id argument "
                           "overrides it.", "aws_default"),
    "queue_url": _option("SQS queue holding scoring requests.", "",
                         "https://sqs.eu-west-1.amazonaws.com/123456789012/warpspeed-requests"),
    "dead_letter_queue_url": _option("SQS queue receiving invalid requests with reasons.", "",
                                     "https://sqs.eu-west-1.amazonaws.com/123456789012/warpspeed-dlq"),
    "compute_backend": _option("Where Spark jobs run: local (a warm local Spark engine per state folder, "
                               "small batches in the worker; needs the spark extra) or emr (the EMR cluster "
                               "pool).", "local", "emr"),
    "window_minutes": _option("Length of a scoring window in minutes.", "30"),
    "window_size_limit": _option("Queue depth that closes a window early.", "2000"),
    "window_deadline_minutes": _option("Minutes after a window's end by which it must be published, else its "
                                       "Deadline Alert fires (fractions allowed; read when the scoring DAG is parsed). "
                                       "Empty: the window length. 0: no deadline (needed where `airflow dags test` "
                                       "runs the scoring DAG on Airflow 3.3.2, apache/airflow#73428).", "", "15"),
    "deadline_notifier": _option("Import path of the notifier a late window's alert calls: an Airflow notifier "
                                 "class (e.g. airflow.providers.slack.notifications.slack_webhook."
                                 "SlackWebhookNotifier) or a function f(context, **kwargs). Empty: log and count "
                                 "only.", "", "airflow.providers.amazon.aws.notifications.sns.SnsNotifier"),
    "deadline_notifier_kwargs": _option("The notifier's arguments, a JSON object; templated fields see "
                                        "{{ window.id }}, {{ window.end }}, {{ deadline.deadline_time }}.", "",
                                        '{"target_arn": "arn:aws:sns:eu-west-1:123456789012:ops", '
                                        '"message": "window {{ window.id }} is late"}'),
    "jars_dir": _option("Folder with the Iceberg Spark runtime and JDBC jars for local Spark. "
                        "Empty: $WARPSPEED_JARS_DIR or <home>/jars (`warpspeed setup` fills it).", ""),
    "spark_master": _option("Spark master for the local backend.", "local[*]"),
    "local_spark_idle_seconds": _option("The local backend's warm Spark engine stops after this many idle "
                                        "seconds (like EMR idle auto-termination; the default outlives two 30-minute "
                                        "windows); 0: no warm engine, one spark-submit per job.", "3600", "600"),
    "intake_visibility_timeout": _option("Seconds a message the collect task received stays hidden from "
                                         "other receivers (extended at half-time while held); a killed "
                                         "collect's messages come back after this.", "600", "120"),
    "task_retry_delay_seconds": _option("First retry delay of the scoring and preprocessing DAGs' tasks, in "
                                        "seconds (doubles per retry; read when the DAG file is parsed).",
                                        "60", "15"),
    "preprocessing_backend": _option("Where feature preprocessing runs: local or glue. Empty: glue when "
                                     "compute_backend=emr, else local.", "", "glue"),
}


CATALOG_CONNECTION: dict[str, Any] = {
    "connection-type": "warpspeed_catalog",
    "hook-class-name": "warpspeed.hooks.catalog.IcebergCatalogHook",
    "hook-name": "Warp Speed Iceberg catalog",
    # Form fields (Airflow >= 3.2 reads these without importing the hook); each is a key of the extra.
    "conn-fields": {
        "type": {"label": "Catalog type", "description": "rest (Iceberg REST: S3 Tables, Polaris, Nessie, Glue's "
                 "REST endpoint), glue (Glue Data Catalog) or sql (a JDBC/SQL catalog database)",
                 "schema": {"type": ["string", "null"], "enum": ["rest", "glue", "sql"], "default": "rest"}},
        "warehouse": {"label": "Warehouse", "description": "s3://bucket/prefix (glue, sql), or the warehouse "
                      "identifier a REST server expects", "schema": {"type": ["string", "null"]}},
        "region": {"label": "AWS region", "description": "glue, and SigV4 signing of Glue / S3 Tables REST",
                   "schema": {"type": ["string", "null"]}},
        "name": {"label": "Spark catalog name", "description": "<name>.<namespace>.<table> in Spark SQL",
                 "schema": {"type": ["string", "null"], "default": "warpspeed"}},
        "token": {"label": "Bearer token", "description": "rest: a static token instead of the OAuth2 client",
                  "schema": {"type": ["string", "null"], "format": "password"}},
    },
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {"host": "Catalog URI", "login": "OAuth2 client ID", "password": "OAuth2 client secret"},
        "placeholders": {
            "host": "https://glue.eu-west-1.amazonaws.com/iceberg (rest), postgresql+psycopg2://user@db/iceberg "
                    "(sql); empty for glue",
            "extra": '{"rest.sigv4-enabled": "true", "rest.signing-name": "glue"}',
        },
    },
}
"""The catalog's connection type; a connection of the Iceberg provider's ``iceberg`` type works as well."""

ICEBERG_ASSETS: dict[str, Any] = {
    "schemes": ["iceberg"],
    "handler": "warpspeed.assets.iceberg.sanitize_uri",
    "factory": "warpspeed.assets.iceberg.create_asset",
    "to_openlineage_converter": "warpspeed.assets.iceberg.convert_asset_to_openlineage",
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata as Airflow reads it."""
    return {
        "package-name": "warpspeed-airflow-provider",
        "name": "Warp Speed",
        "description": "Batched multi-tenant Spark scoring on Amazon EMR with Apache Iceberg.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Warp Speed",
                "external-doc-url": DOCUMENTATION_URL,
                "tags": ["aws"],
            }
        ],
        "hooks": [
            {"integration-name": "Warp Speed", "python-modules": [
                "warpspeed.hooks.sqs", "warpspeed.hooks.iceberg", "warpspeed.hooks.emr",
                "warpspeed.hooks.s3", "warpspeed.hooks.glue", "warpspeed.hooks.catalog"]},
        ],
        "connection-types": [CATALOG_CONNECTION],
        "asset-uris": [ICEBERG_ASSETS],
        "operators": [
            {"integration-name": "Warp Speed", "python-modules": [
                "warpspeed.operators.collect", "warpspeed.operators.plan", "warpspeed.operators.clusters",
                "warpspeed.operators.score", "warpspeed.operators.publish",
                "warpspeed.operators.maintenance", "warpspeed.operators.lifecycle",
                "warpspeed.operators.preprocess"]},
        ],
        "sensors": [
            {"integration-name": "Warp Speed", "python-modules": ["warpspeed.sensors.sqs"]},
        ],
        "triggers": [
            {"integration-name": "Warp Speed", "python-modules": ["warpspeed.triggers.sqs",
                                                                  "warpspeed.triggers.emr"]},
        ],
        "extra-links": [
            "warpspeed.links.emr.EmrPoolClusterLink",
            "warpspeed.links.emr.EmrPoolStepLogsLink",
            "warpspeed.links.emr.EmrPoolSparkHistoryLink",
        ],
        "config": {
            "warpspeed": {
                "description": "Warp Speed scoring: queues, storage, catalog and compute backend.",
                "options": CONFIG_OPTIONS,
            }
        },
    }
