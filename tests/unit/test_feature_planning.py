"""Refresh planning (watermark vs listing, event hints), raw layout and Glue job settings."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from warpspeed.config.glue_job import GlueJobSettings
from warpspeed.config.settings import WarpSpeedSettings, preprocessing_backend
from warpspeed.embedded.raw_data import RawDataMix, write_day
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.preprocessing.raw_sources import (
    ENGAGEMENT_EVENTS,
    FIRMOGRAPHICS,
    fingerprint,
    list_partitions,
    parse_partitions,
    partition_files,
)
from warpspeed.preprocessing.refresh import RefreshState, plan_refresh
from warpspeed.preprocessing.service import FeatureRefreshService as GluePreprocessingHook
from warpspeed.storage.documents import storage_for

ACTIVITY = ["engagement_events", "intent_signals"]


def test_partition_files_groups_by_day_and_ignores_markers() -> None:
    uris = [
        "s3://b/w/raw/engagement_events/dt=2026-01-02/part-b.parquet",
        "s3://b/w/raw/engagement_events/dt=2026-01-02/part-a.parquet",
        "s3://b/w/raw/engagement_events/dt=2026-01-01/part-c.parquet",
        "s3://b/w/raw/engagement_events/dt=2026-01-01/_SUCCESS",
        "s3://b/w/raw/engagement_events/README.md",
    ]
    assert partition_files(uris) == {"2026-01-01": ["part-c.parquet"],
                                     "2026-01-02": ["part-a.parquet", "part-b.parquet"]}
    assert fingerprint(["a", "b"]) == fingerprint(["b", "a"]) != fingerprint(["a"])


def test_parse_partitions_accepts_list_or_dt_and_rejects_garbage() -> None:
    assert parse_partitions(None) == []
    assert parse_partitions({"partitions": ["2026-01-03", "2026-01-02"], "dt": "2026-01-03"}) == [
        "2026-01-02", "2026-01-03"]
    with pytest.raises(WarpSpeedConfigError, match="partitions"):
        parse_partitions({"partitions": "2026-01-03"})
    with pytest.raises(WarpSpeedConfigError, match="YYYY-MM-DD"):
        parse_partitions({"partitions": ["yesterday"]})


def test_first_plan_takes_every_partition_and_sets_as_of() -> None:
    listing = {"engagement_events": {"2026-01-01": "a", "2026-01-02": "b"}, "intent_signals": {"2026-01-02": "c"}}
    plan = plan_refresh(ACTIVITY, listing, RefreshState())
    assert plan.changed == {"engagement_events": ["2026-01-01", "2026-01-02"], "intent_signals": ["2026-01-02"]}
    assert plan.as_of == "2026-01-02" and plan.previous_as_of is None
    assert plan.groups == ["activity"] and plan.has_work


def test_plan_against_watermark_takes_new_and_rewritten_partitions_only() -> None:
    state = RefreshState(partitions={"engagement_events": {"2026-01-01": "a", "2026-01-02": "b"},
                                     "intent_signals": {"2026-01-02": "c"}}, as_of="2026-01-02")
    listing = {"engagement_events": {"2026-01-01": "a", "2026-01-02": "B2", "2026-01-03": "d"},
               "intent_signals": {"2026-01-02": "c"}}
    plan = plan_refresh(ACTIVITY, listing, state)
    assert plan.changed == {"engagement_events": ["2026-01-02", "2026-01-03"], "intent_signals": []}
    assert plan.as_of == "2026-01-03" and plan.previous_as_of == "2026-01-02"
    assert plan.changed_partitions() == ["engagement_events/dt=2026-01-02", "engagement_events/dt=2026-01-03"]
    # nothing new: no work
    assert not plan_refresh(ACTIVITY, state.partitions, state).has_work


def test_event_hints_force_a_partition_and_report_missing_ones() -> None:
    state = RefreshState(partitions={"engagement_events": {"2026-01-01": "a"}}, as_of="2026-01-01")
    listing = {"engagement_events": {"2026-01-01": "a"}, "intent_signals": {}}
    plan = plan_refresh(ACTIVITY, listing, state, {"engagement_events": ["2026-01-01", "2026-01-09"]})
    assert plan.changed["engagement_events"] == ["2026-01-01"]
    assert plan.missing == {"engagement_events": ["2026-01-09"]}


def test_activity_partitions_older_than_the_window_are_skipped_but_firmographics_are_not() -> None:
    listing = {"engagement_events": {"2025-11-01": "x", "2026-01-31": "y"}, "intent_signals": {},
               "firmographics": {"2025-11-01": "f"}}
    plan = plan_refresh([*ACTIVITY, "firmographics"], listing, RefreshState())
    assert plan.changed["engagement_events"] == ["2026-01-31"]
    assert plan.skipped == {"engagement_events": ["2025-11-01"]}
    assert plan.changed["firmographics"] == ["2025-11-01"]
    assert plan.groups == ["activity", "firmographics"]


def test_firmographics_plan_has_no_as_of() -> None:
    plan = plan_refresh(["firmographics"], {"firmographics": {"2026-01-01": "f"}}, RefreshState())
    assert plan.as_of is None and plan.groups == ["firmographics"]


def test_hook_plans_from_storage_and_publish_moves_the_watermark(tmp_path: Path) -> None:
    settings = WarpSpeedSettings.from_mapping(
        {"home": str(tmp_path), "storage_prefix": (tmp_path / "storage").as_uri()})
    mix = RawDataMix(tenants=1, accounts_per_tenant=5)
    write_day(settings.storage_prefix, date(2026, 1, 1), mix, sources=(FIRMOGRAPHICS,), full_firmographics=True)
    hook = GluePreprocessingHook(settings)
    plan_uri, plan = hook.plan("firmo", "manual__1", ["firmographics"])
    assert plan.changed == {"firmographics": ["2026-01-01"]}
    doc = hook.read_plan(plan_uri)
    assert doc["raw_root"].endswith("/storage/raw") and doc["groups"] == ["firmographics"]
    # the job's summary, as build_features.py writes it
    storage_for(doc["summary_uri"]).write_text(doc["summary_uri"], json.dumps({
        "schema": "warpspeed.features_result/v1", "run_key": doc["run_key"], "status": "succeeded",
        "features_snapshot_id": 42, "changed_rows": 5, "changed_tenants": ["tenant-000"], "as_of": None}))
    extra = hook.publish(plan_uri)
    assert extra["snapshot_id"] == 42
    assert extra["changed_partitions"] == ["firmographics/dt=2026-01-01"]
    assert extra["feature_partitions"] == ["tenant_id=tenant-000"]
    assert hook.read_state("firmo").partitions["firmographics"] == list_partitions(
        hook.storage, settings.storage_prefix, FIRMOGRAPHICS)
    assert not hook.plan("firmo", "manual__2", ["firmographics"])[1].has_work


def test_publish_refuses_a_summary_of_another_run(tmp_path: Path) -> None:
    settings = WarpSpeedSettings.from_mapping(
        {"home": str(tmp_path), "storage_prefix": (tmp_path / "storage").as_uri()})
    write_day(settings.storage_prefix, date(2026, 1, 1), RawDataMix(tenants=1, accounts_per_tenant=3),
              sources=(ENGAGEMENT_EVENTS,))
    hook = GluePreprocessingHook(settings)
    plan_uri, _ = hook.plan("act", "run-a", ["engagement_events"])
    doc = hook.read_plan(plan_uri)
    storage_for(doc["summary_uri"]).write_text(doc["summary_uri"], json.dumps(
        {"schema": "warpspeed.features_result/v1", "run_key": "run-b", "status": "succeeded"}))
    with pytest.raises(Exception, match="not the summary"):
        hook.publish(plan_uri)
    assert hook.read_state("act").partitions == {}  # watermark unchanged


def test_preprocessing_backend_follows_compute_backend_unless_overridden(tmp_path: Path) -> None:
    local = WarpSpeedSettings.from_mapping({"home": str(tmp_path)})
    emr = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "compute_backend": "emr"})
    assert preprocessing_backend(local, "") == "local"
    assert preprocessing_backend(emr, "") == "glue"
    assert preprocessing_backend(emr, "local") == "local"
    with pytest.raises(WarpSpeedConfigError, match="preprocessing_backend"):
        preprocessing_backend(local, "lambda")


def test_glue_settings_validate_and_build_glue5_iceberg_job(tmp_path: Path) -> None:
    with pytest.raises(WarpSpeedConfigError, match="glue_version"):
        GlueJobSettings(glue_version="4.0")
    with pytest.raises(WarpSpeedConfigError, match="not both"):
        GlueJobSettings(iam_role_name="r", iam_role_arn="arn:aws:iam::1:role/r")
    with pytest.raises(WarpSpeedConfigError, match="script_bucket"):
        GlueJobSettings().require_bucket()
    config = tmp_path / "p.yaml"
    config.write_text("glue:\n  script_bucket: my-bucket\n  number_of_workers: 4\n", encoding="utf-8")
    glue = GlueJobSettings.load(config)
    kwargs = glue.create_job_kwargs({"spark.sql.catalog.warpspeed": "org.apache.iceberg.spark.SparkCatalog",
                                     "spark.sql.catalog.warpspeed.type": "glue"})
    assert kwargs["GlueVersion"] == "5.0" and kwargs["NumberOfWorkers"] == 4
    args = kwargs["DefaultArguments"]
    assert args["--datalake-formats"] == "iceberg"
    assert args["--conf"] == ("spark.sql.catalog.warpspeed=org.apache.iceberg.spark.SparkCatalog"
                              " --conf spark.sql.catalog.warpspeed.type=glue")
    assert args["--extra-py-files"] == "s3://my-bucket/warpspeed/glue/spark_jobs.zip"
    config.write_text("glue:\n  bogus: 1\n", encoding="utf-8")
    with pytest.raises(WarpSpeedConfigError, match="bogus"):
        GlueJobSettings.load(config)


def test_shipped_preprocessing_yaml_loads() -> None:
    glue = GlueJobSettings.load(Path(__file__).resolve().parents[2] / "dags" / "config" / "preprocessing.yaml")
    assert glue.max_concurrent_runs == 1 and glue.glue_version == "5.0"
