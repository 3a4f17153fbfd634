"""The ledger records cost columns, and an older ledger table gains them in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pyiceberg.schema import Schema

from warpspeed.config.catalog import CatalogConfig
from warpspeed.hooks.iceberg import IcebergLedgerHook
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.records import batch_record
from warpspeed.ledger.tables import BATCH_RUNS_SCHEMA, BATCH_RUNS_TABLE, ensure_tables
from warpspeed.window.manifests import BatchManifest, BatchRun

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _request(i: int, tenant: str, model: str = "churn_risk") -> ScoringRequest:
    return ScoringRequest(request_id=f"r{i}", tenant_id=tenant, model=model, model_version="v1",
                          workload="scoring", requested_at=T0.isoformat(), estimated_accounts=100)


def _batch(batch_id: str, seconds: float, created: bool) -> tuple[BatchRun, BatchManifest, dict]:
    members = (_request(1, "t-a"), _request(2, "t-a", "upsell_propensity"), _request(3, "t-b"))
    manifest = BatchManifest(batch_id=batch_id, window_id="20260105T0900Z", workload="scoring",
                             members=members, estimated_rows=300, models_uri="file:///m",
                             summary_uri="file:///s")
    run = BatchRun(batch_id=batch_id, window_id="20260105T0900Z", workload="scoring",
                   batch_manifest_uri="file:///b", summary_uri="file:///s", backend="local",
                   cluster_id="local:scoring", cluster_created=created, state="SUCCEEDED",
                   started_at=T0.isoformat(), finished_at=(T0 + timedelta(seconds=seconds)).isoformat(),
                   run_seconds=seconds)
    summary = {"status": "succeeded", "rows": 400, "duration_s": seconds - 5,
               "members": [{"tenant_id": "t-a", "rows": 150, "status": "scored"},
                           {"tenant_id": "t-a", "rows": 150, "status": "scored"},
                           {"tenant_id": "t-b", "rows": 100, "status": "scored"}]}
    return run, manifest, summary


@pytest.fixture
def catalog_cfg(tmp_path: Path) -> CatalogConfig:
    return CatalogConfig.embedded(tmp_path)


def test_record_has_costs_shared_by_rows() -> None:
    run, manifest, summary = _batch("b1", 60, True)
    record = batch_record(run, manifest, summary, T0)
    assert record.cluster_created is True
    assert record.cost_total_usd == pytest.approx(
        record.cost_ec2_usd + record.cost_emr_fee_usd + record.cost_s3_usd)
    assert record.cost_total_usd > 0 and record.instance_hours_spot > 0
    shares = {t.tenant_id: t for t in record.tenant_costs}
    assert shares["t-a"].rows == 300 and shares["t-a"].requests == 2
    assert shares["t-a"].cost_usd == pytest.approx(3 * shares["t-b"].cost_usd, rel=1e-3)
    assert sum(t.cost_usd for t in record.tenant_costs) == pytest.approx(record.cost_total_usd, abs=1e-6)


def test_old_ledger_is_evolved_and_rewritten_by_batch_id(catalog_cfg: CatalogConfig) -> None:
    catalog = catalog_cfg.load()
    catalog.create_namespace_if_not_exists("warpspeed")
    old_schema = Schema(*[f for f in BATCH_RUNS_SCHEMA.fields if f.field_id <= 18])
    catalog.create_table(BATCH_RUNS_TABLE, schema=old_schema)
    ensure_tables(catalog)
    names = {f.name for f in catalog.load_table(BATCH_RUNS_TABLE).schema().fields}
    assert {"cost_total_usd", "tenant_costs", "usage", "cluster_created"} <= names

    hook = IcebergLedgerHook(catalog_cfg)
    records = [batch_record(*_batch("b1", 60, True), T0), batch_record(*_batch("b2", 120, False), T0)]
    assert hook.record_batches(records) == 2
    assert hook.record_batches(records[:1]) == 1  # a retried publish rewrites, never doubles
    rows = {r["batch_id"]: r for r in hook.read_batches()}
    assert sorted(rows) == ["b1", "b2"]
    assert rows["b2"]["cost_total_usd"] == pytest.approx(2 * rows["b1"]["cost_total_usd"], rel=0.05)
    assert {t["tenant_id"] for t in rows["b1"]["tenant_costs"]} == {"t-a", "t-b"}
    assert {u["market"] for u in rows["b1"]["usage"]} == {"ON_DEMAND", "SPOT"}
    assert rows["b1"]["cluster_created"] is True and rows["b2"]["cluster_created"] is False
    assert hook.read_batches(since=T0 + timedelta(days=1)) == []


def test_record_batches_evolves_a_table_created_before_the_cost_columns(catalog_cfg: CatalogConfig) -> None:
    catalog = catalog_cfg.load()
    catalog.create_namespace_if_not_exists("warpspeed")
    old_schema = Schema(*[f for f in BATCH_RUNS_SCHEMA.fields if f.field_id <= 18])
    catalog.create_table(BATCH_RUNS_TABLE, schema=old_schema)
    hook = IcebergLedgerHook(catalog_cfg)
    hook.record_batches([batch_record(*_batch("b9", 30, True), T0)])
    (row,) = hook.read_batches()
    assert row["cost_total_usd"] > 0


def test_record_batches_creates_the_ledger_table_in_a_new_catalog(catalog_cfg: CatalogConfig) -> None:
    """A user's own stack has no ``warpspeed.batch_runs`` until the first publish creates it."""
    assert not catalog_cfg.load().table_exists(BATCH_RUNS_TABLE)
    hook = IcebergLedgerHook(catalog_cfg)
    assert hook.record_batches([batch_record(*_batch("b1", 30, True), T0)]) == 1
    assert [r["batch_id"] for r in hook.read_batches()] == ["b1"]
