"""The Glue preprocessing task as the unit and integration tests build it: two catalogs, settings, the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.sqs_server import REGION
from warpspeed.operators.preprocess import GlueBuildFeaturesOperator

S3_TABLES = CatalogConfig(
    kind="rest", uri="https://s3tables.eu-west-1.amazonaws.com/iceberg",
    warehouse="arn:aws:s3tables:eu-west-1:123456789012:bucket/warpspeed", region="eu-west-1",
    properties={"rest.sigv4-enabled": "true", "rest.signing-name": "s3tables"},
)
GLUE_CATALOG = CatalogConfig(kind="glue", warehouse="s3://bucket/warehouse", region=REGION)


def settings(catalog: CatalogConfig, tmp_path: Path, conn_id: str = "aws_default") -> WarpSpeedSettings:
    base = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "storage_prefix": "s3://bucket/ws",
                                           "compute_backend": "emr", "aws_conn_id": conn_id}, catalog=catalog)
    return base


def operator(config_file: Path | str, ws: WarpSpeedSettings, **kwargs: Any) -> GlueBuildFeaturesOperator:
    op = GlueBuildFeaturesOperator(task_id="build_features_glue", plan_uri="s3://bucket/ws/plan.json",
                                   config_file=str(config_file), **kwargs)
    op.__dict__["settings"] = ws
    return op
