"""The Glue preprocessing task on AWS: waits as long as the job runs, takes REST catalogs (deferral: test_glue_hook)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.glue_support import GLUE_CATALOG, S3_TABLES, operator, settings
from tests.paths import BUNDLE_CONFIG
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.glue_job import START_MARGIN_MINUTES, GlueJobSettings
from warpspeed.exceptions import WarpSpeedConfigError


@pytest.mark.parametrize("timeout", [None, 5, 60, 240, 2880])
def test_the_task_waits_at_least_as_long_as_the_glue_job_may_run(tmp_path: Path, timeout: int | None) -> None:
    """Item 5: waiter_max_attempts stayed at the provider's 75 (37.5 min at 30 s) below a 60-minute timeout."""
    shipped = GlueJobSettings.load(BUNDLE_CONFIG / "preprocessing.yaml")
    glue = replace(shipped, script_bucket="bucket") if timeout is None \
        else GlueJobSettings(script_bucket="bucket", timeout_minutes=timeout)
    op = operator(BUNDLE_CONFIG / "preprocessing.yaml", settings(GLUE_CATALOG, tmp_path))
    op.configure(glue, op.settings)
    assert op.waiter_delay == glue.waiter_delay
    assert op.waiter_max_attempts * op.waiter_delay >= (glue.timeout_minutes + START_MARGIN_MINUTES) * 60
    assert op.create_job_kwargs["Timeout"] == glue.timeout_minutes


def test_a_rest_catalog_job_definition_signs_with_the_configured_region(tmp_path: Path) -> None:
    """Item 6: S3 Tables / Glue REST / Polaris through --conf, rest.signing-region from region."""
    glue = GlueJobSettings(script_bucket="bucket")
    op = operator(BUNDLE_CONFIG / "preprocessing.yaml", settings(S3_TABLES, tmp_path))
    op.configure(glue, op.settings)
    conf = op.create_job_kwargs["DefaultArguments"]["--conf"].split(" --conf ")
    prefix = "spark.sql.catalog.warpspeed"
    for item in (f"{prefix}=org.apache.iceberg.spark.SparkCatalog", f"{prefix}.type=rest",
                 f"{prefix}.uri=https://s3tables.eu-west-1.amazonaws.com/iceberg",
                 f"{prefix}.warehouse=arn:aws:s3tables:eu-west-1:123456789012:bucket/warpspeed",
                 f"{prefix}.rest.sigv4-enabled=true", f"{prefix}.rest.signing-name=s3tables",
                 f"{prefix}.rest.signing-region=eu-west-1"):
        assert item in conf, (item, conf)
    assert S3_TABLES.pyiceberg_properties()["rest.signing-region"] == "eu-west-1"
    explicit = CatalogConfig(kind="rest", uri="https://glue.eu-west-1.amazonaws.com/iceberg", region="eu-west-1",
                             properties={"rest.sigv4-enabled": "true", "rest.signing-name": "glue",
                                         "rest.signing-region": "us-east-1"})
    assert explicit.spark_conf()[f"{prefix}.rest.signing-region"] == "us-east-1"  # what the user set wins


@pytest.mark.parametrize(
    ("catalog", "needle"),
    [
        (CatalogConfig(kind="sql", warehouse="file:///tmp/w", uri="sqlite:///tmp/c.db"), "catalog_type = sql"),
        (CatalogConfig(kind="rest", uri="http://127.0.0.1:8181"), "loopback"),
        (CatalogConfig(kind="rest", uri="https://polaris.example.com/api/catalog",
                       properties={"credential": "id:secret"}), "credential"),
    ],
)
def test_catalogs_glue_cannot_use_are_refused_with_the_fix(tmp_path: Path, catalog: CatalogConfig,
                                                           needle: str) -> None:
    op = operator(BUNDLE_CONFIG / "preprocessing.yaml", settings(catalog, tmp_path))
    with pytest.raises(WarpSpeedConfigError, match=needle):
        op.configure(GlueJobSettings(script_bucket="bucket"), op.settings)
