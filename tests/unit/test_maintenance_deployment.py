"""Maintenance on AWS: every table the DAGs write is registered, S3 Tables are left to themselves,
the lifecycle task reads only what it may and keeps the bucket's settings."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator
from moto import mock_aws

from spark_jobs.build_features import DAILY_TABLES
from tests.glue_support import S3_TABLES
from tests.paths import BUNDLE_CONFIG, REPO_ROOT
from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.lifecycle import load_rules
from warpspeed.config.maintenance_policy import MaintenancePolicy
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.hooks.s3 import S3LifecycleHook
from warpspeed.ledger.tables import MAINTENANCE_RUNS, TABLES
from warpspeed.maintenance.s3_tables import SKIP_REASON, maintenance_requests
from warpspeed.maintenance.service import IcebergMaintenanceService
from warpspeed.operators.lifecycle import ApplyS3LifecycleOperator
from warpspeed.storage.documents import LocalStorage

POLICY_FILE = BUNDLE_CONFIG / "maintenance.yaml"
RULES_FILE = BUNDLE_CONFIG / "s3_lifecycle.yaml"
BUCKET = "ws-bucket"
PREFIX = f"s3://{BUCKET}/warpspeed"


def tables_the_dags_write() -> dict[str, str]:
    """Return every Iceberg table a DAG of the bundle writes, with who writes it."""
    written = {t.identifier: "ledger.tables (scoring, preprocessing)" for t in TABLES}
    written[MAINTENANCE_RUNS.identifier] = "the maintenance DAG's ledger"
    written |= {table: "spark_jobs/build_features.py (daily tables)" for table, _ in DAILY_TABLES.values()}
    workloads = WorkloadCatalog.load(BUNDLE_CONFIG / "workloads.yaml", BUNDLE_CONFIG / "cluster_profiles.yaml")
    for name in workloads.workloads:
        written.setdefault(workloads[name].tables.scores_table, f"the {name} workload's scores")
    return written


def test_every_table_the_dags_write_is_registered_for_maintenance() -> None:
    """Item 10: the daily feature tables grew snapshots and replaced files forever."""
    registered = {t.identifier for t in MaintenancePolicy.load(POLICY_FILE).tables}
    missing = {t: why for t, why in tables_the_dags_write().items() if t not in registered}
    assert not missing, f"written but not in {POLICY_FILE.name}: {missing}"
    assert {"features.engagement_daily", "features.intent_daily", "features.firmographics_daily"} <= registered


class Catalog:
    """A catalog whose tables are plain locations; loading another team's table is AccessDenied."""

    def __init__(self, tables: dict[str, str], denied: frozenset[str] = frozenset()) -> None:
        self.tables, self.denied, self.loaded = tables, denied, []

    def table_exists(self, identifier: str) -> bool:
        return identifier in self.tables or identifier in self.denied

    def list_namespaces(self) -> list[tuple[str, ...]]:
        return sorted({(t.split(".")[0],) for t in [*self.tables, *self.denied]})

    def list_tables(self, namespace: Any) -> list[tuple[str, str]]:
        return [tuple(t.split(".")) for t in [*self.tables, *self.denied] if t.startswith(f"{namespace[0]}.")]

    def load_table(self, identifier: Any) -> Any:
        name = ".".join(identifier) if isinstance(identifier, tuple) else identifier
        self.loaded.append(name)
        if name in self.denied:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not yours"}}, "GetTable")
        location = self.tables[name]
        return type("Table", (), {"location": lambda self: location, "properties": {}})()


def maintenance_service(tmp_path: Path, config: CatalogConfig) -> tuple[IcebergMaintenanceService, Catalog]:
    """Return the maintenance service on ``config``, its catalog a :class:`Catalog` of one table."""
    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "storage_prefix": tmp_path.as_uri()},
                                              catalog=config)
    service = IcebergMaintenanceService(settings, LocalStorage())
    catalog = Catalog({"scores.account_scores": "s3://x/scores"})
    service.__dict__["catalog"] = catalog
    service._log = logging.getLogger("tests.maintenance.s3_tables")  # a stdlib logger: caplog sees it
    return service, catalog


def test_on_s3_tables_maintenance_is_left_to_s3_tables_with_a_logged_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 9: the maintenance DAG ran all four procedures on tables S3 Tables maintain themselves."""
    service, catalog = maintenance_service(tmp_path, S3_TABLES)
    policy = MaintenancePolicy.load(POLICY_FILE)
    with caplog.at_level(logging.WARNING):
        assert service.plan(policy, "scheduled", "run-1") == []
    assert catalog.loaded == []
    assert SKIP_REASON in caplog.text and "icebergSnapshotManagement" in caplog.text
    plan = json.loads((tmp_path / "maintenance/runs/run-1/scores.account_scores.plan.json").read_text())
    assert plan["skipped_reason"] == SKIP_REASON and plan["actions"] == []
    assert S3_TABLES.is_s3_tables()
    assert not CatalogConfig(kind="rest", uri="https://polaris.example.com/api/catalog").is_s3_tables()
    assert not CatalogConfig(kind="glue", warehouse="s3://w/").is_s3_tables()


GLUE_REST_S3_TABLES = CatalogConfig(
    kind="rest", uri="https://glue.eu-west-1.amazonaws.com/iceberg", warehouse="123456789012:s3tablescatalog/warpspeed",
    region="eu-west-1", properties={"rest.sigv4-enabled": "true", "rest.signing-name": "glue"})
GLUE_S3_TABLES = CatalogConfig(kind="glue", warehouse="s3://ws-bucket/warehouse", region="eu-west-1",
                               properties={"glue.id": "123456789012:s3tablescatalog/warpspeed"})


@pytest.mark.parametrize("config", [GLUE_REST_S3_TABLES, GLUE_S3_TABLES], ids=["glue-rest-endpoint", "glue-catalog-id"])
def test_s3_tables_reached_through_glue_are_left_to_s3_tables_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, config: CatalogConfig
) -> None:
    """Item 9: AWS's recommended way to S3 Tables is the Glue Data Catalog (its s3tablescatalog), not only
    the s3tables endpoint: detected by the federated catalog id, the equivalent requests name the table bucket."""
    assert config.is_s3_tables()
    assert config.s3_table_bucket_arn() == "arn:aws:s3tables:eu-west-1:123456789012:bucket/warpspeed"
    assert S3_TABLES.s3_table_bucket_arn() == S3_TABLES.warehouse
    service, catalog = maintenance_service(tmp_path, config)
    with caplog.at_level(logging.WARNING):
        assert service.plan(MaintenancePolicy.load(POLICY_FILE), "scheduled", "run-1") == []
    assert catalog.loaded == [] and SKIP_REASON in caplog.text
    assert '"tableBucketARN": "arn:aws:s3tables:eu-west-1:123456789012:bucket/warpspeed"' in caplog.text
    for plain in (replace(GLUE_REST_S3_TABLES, warehouse="123456789012"), replace(GLUE_S3_TABLES, properties={}),
                  replace(GLUE_S3_TABLES, properties={"glue.id": "123456789012"})):
        assert not plain.is_s3_tables() and plain.s3_table_bucket_arn() is None, plain


def test_the_equivalent_s3_tables_requests_pass_the_s3tables_model() -> None:
    model = botocore.session.get_session().get_service_model("s3tables")
    for table in MaintenancePolicy.load(POLICY_FILE).tables:
        for request in maintenance_requests(table, S3_TABLES.warehouse):
            params = {k: v for k, v in request.items() if k != "operation"}
            shape = model.operation_model(request["operation"]).input_shape
            report = ParamValidator().validate(params, shape)
            assert not report.has_errors(), report.generate_report()


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        client.create_bucket(Bucket=BUCKET)
        yield client


def lifecycle_task(tmp_path: Path, s3: Any) -> ApplyS3LifecycleOperator:
    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "storage_prefix": PREFIX},
                                              catalog=CatalogConfig(kind="glue", warehouse=f"s3://{BUCKET}/warehouse"))
    op = ApplyS3LifecycleOperator(task_id="apply_s3_lifecycle", rules_file=str(RULES_FILE),
                                  policy_file=str(POLICY_FILE))
    op.__dict__["settings"] = settings
    op.__dict__["hook"] = S3LifecycleHook(client=s3)
    return op


def test_the_lifecycle_task_loads_only_registered_tables(
    tmp_path: Path, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 11: in a shared catalog, loading another team's table is AccessDenied and failed the task."""
    catalog = Catalog({"scores.account_scores": "s3://other-bucket/scores",
                       "warpspeed.batch_runs": f"s3://{BUCKET}/tables/batch_runs"},
                      denied=frozenset({"otherteam.secret_table"}))
    monkeypatch.setattr(CatalogConfig, "load", lambda self: catalog)
    op = lifecycle_task(tmp_path, s3)
    applied = op.execute({})
    assert applied == ["warpspeed-window-manifests", "warpspeed-maintenance-documents", "warpspeed-logs"]
    assert "otherteam.secret_table" not in catalog.loaded
    assert set(catalog.loaded) <= {t.identifier for t in MaintenancePolicy.load(POLICY_FILE).tables}
    assert f"s3://{BUCKET}/tables/batch_runs" in op.protected()


def test_a_table_found_in_s3_under_a_rule_prefix_is_protected_without_its_catalog(tmp_path: Path, s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="warpspeed/logs/otherteam/t1/metadata/00003-a.metadata.json", Body=b"{}")
    s3.put_object(Bucket=BUCKET, Key="warpspeed/logs/spark/driver.log", Body=b"x")
    hook = S3LifecycleHook(client=s3)
    assert hook.iceberg_tables_near(BUCKET, "warpspeed/logs/") == [f"s3://{BUCKET}/warpspeed/logs/otherteam/t1"]
    with pytest.raises(WarpSpeedConfigError, match=r"warpspeed-logs .*otherteam/t1"):
        hook.apply(load_rules(RULES_FILE), PREFIX, [])
    s3.put_object(Bucket=BUCKET, Key="metadata/00001-b.metadata.json", Body=b"{}")  # a table at the bucket root
    assert f"s3://{BUCKET}/" in hook.iceberg_tables_near(BUCKET, "warpspeed/windows/")


class RecordingS3:
    """An S3 client stand-in whose bucket has a TransitionDefaultMinimumObjectSize (moto does not keep it)."""

    def __init__(self) -> None:
        self.put: dict[str, Any] = {}

    def get_bucket_lifecycle_configuration(self, Bucket: str) -> dict[str, Any]:
        return {"Rules": [{"ID": "team-archive", "Status": "Enabled", "Filter": {"Prefix": "archive/"},
                           "Expiration": {"Days": 9}}],
                "TransitionDefaultMinimumObjectSize": "varies_by_storage_class"}

    def put_bucket_lifecycle_configuration(self, **kwargs: Any) -> None:
        self.put = kwargs

    def list_objects_v2(self, **_kw: Any) -> dict[str, Any]:
        return {"Contents": [], "IsTruncated": False}


def test_the_merge_keeps_the_bucket_transition_default_minimum_object_size() -> None:
    client = RecordingS3()
    S3LifecycleHook(client=client).apply(load_rules(RULES_FILE), PREFIX, [])
    assert client.put["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    assert client.put["LifecycleConfiguration"]["Rules"][0]["ID"] == "team-archive"


CONFIG_PATH = re.compile(r"[\w./-]*/[\w-]+\.ya?ml")


def test_the_code_names_config_files_where_they_are() -> None:
    """Item 11: the lifecycle hook and operator pointed at maintenance/s3_lifecycle.yaml (it is dags/config/)."""
    named: dict[str, set[str]] = {}
    for folder in ("provider", "maintenance", "spark_jobs", "plugins", "dags"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for found in CONFIG_PATH.findall(path.read_text(encoding="utf-8")):
                if "path/to/" not in found:  # an example in a docstring ("/path/to/policy.yaml")
                    named.setdefault(found.lstrip("/"), set()).add(str(path.relative_to(REPO_ROOT)))
    assert "dags/config/s3_lifecycle.yaml" in named, sorted(named)
    wrong = {p: sorted(where) for p, where in named.items()
             if not any((REPO_ROOT / root / p).is_file() for root in ("", "dags", "provider"))}
    assert not wrong, f"named but not there: {wrong}"
