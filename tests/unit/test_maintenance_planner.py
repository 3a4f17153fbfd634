"""The planner against real Iceberg metadata written with pyiceberg (no Spark)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from warpspeed.config.catalog import CatalogConfig
from warpspeed.config.maintenance_policy import (
    CompactionPolicy,
    ManifestPolicy,
    SnapshotPolicy,
    TablePolicy,
    TriggerPolicy,
)
from warpspeed.ledger.tables import SCORES, SCORES_TABLE
from warpspeed.maintenance.plan import (
    MaintenanceHistory,
    PartitionFiles,
    SnapshotInfo,
    TablePlan,
    TableState,
    partition_filter,
    plan_table,
    read_table_state,
)

POLICY = TablePolicy(
    "scores.account_scores",
    snapshots=SnapshotPolicy(max_age_hours=0, retain_last=3),
    compaction=CompactionPolicy(min_small_files=5, min_small_bytes_mb=64),
    manifests=ManifestPolicy(max_manifests=10),
    trigger=TriggerPolicy(asset_driven=True, min_new_commits=20, min_interval_minutes=60),
)


def _rows(tenant: str, model: str, n: int, start: int) -> pa.Table:
    now = datetime.now(UTC)
    return pa.Table.from_pylist(
        [{"tenant_id": tenant, "model": model, "model_version": "v1", "account_id": f"a{start + i}",
          "score": float(i), "batch_id": f"b{start}", "scored_at": now} for i in range(n)],
        schema=SCORES.schema.as_arrow(),
    )


@pytest.fixture(scope="module")
def scores_table(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("planner")
    catalog = CatalogConfig.embedded(Path(home)).load()
    catalog.create_namespace("scores")
    table = catalog.create_table(SCORES_TABLE, schema=SCORES.schema, partition_spec=SCORES.partition_spec,
                                 properties={"format-version": "2"})
    for i in range(15):  # 15 tiny commits into one partition...
        table.append(_rows("t-busy", "churn_risk", 3, i * 3))
    for i in range(2):  # ...and 2 into another
        table.append(_rows("t-o'neil", "churn_risk", 3, 100 + i * 3))
    return catalog.load_table(SCORES_TABLE)


def test_reads_partitions_snapshots_and_manifests(scores_table: Any) -> None:
    state = read_table_state(scores_table, SCORES_TABLE)
    assert len(state.snapshots) == 17
    assert state.data_files == 17 and state.manifests == 17
    by_part = {dict(p.partition)["tenant_id"]: p for p in state.partitions}
    assert by_part["t-busy"].files == 15 and by_part["t-o'neil"].files == 2
    assert by_part["t-busy"].partition == (("tenant_id", "t-busy"), ("model", "churn_risk"))
    assert state.current_snapshot_id == scores_table.current_snapshot().snapshot_id


def test_plans_compaction_only_for_partitions_over_the_trigger(scores_table: Any) -> None:
    state = read_table_state(scores_table, SCORES_TABLE)
    plan = plan_table(POLICY, state, MaintenanceHistory(), datetime.now(UTC))
    assert [a.action for a in plan.actions] == [
        "rewrite_data_files", "expire_snapshots", "rewrite_manifests", "remove_orphan_files"]
    compaction = plan.actions[0]
    assert compaction.due
    assert compaction.metrics["partitions_due"] == 1 and compaction.metrics["small_files"] == 15
    assert compaction.params["where"] == "(tenant_id = 't-busy' AND model = 'churn_risk')"
    assert compaction.params["options"]["partial-progress.enabled"] == "true"
    assert "15 files" in compaction.reason


def test_plans_expiry_manifests_and_orphans_with_their_numbers(scores_table: Any) -> None:
    state = read_table_state(scores_table, SCORES_TABLE)
    now = datetime.now(UTC) + timedelta(seconds=1)
    plan = plan_table(POLICY, state, MaintenanceHistory(), now, partial_progress=False)
    expiry, manifests, orphans = plan.actions[1:]
    assert expiry.due and expiry.metrics["expirable"] == 14 and expiry.metrics["snapshots_after"] == 3
    assert expiry.params == {"older_than": now.isoformat(), "retain_last": 3}
    assert manifests.due and manifests.metrics["manifests"] == 17
    assert orphans.due and "never cleaned" in orphans.reason
    assert datetime.fromisoformat(orphans.params["older_than"]) == now - timedelta(hours=72)
    assert plan.actions[0].params["options"]["partial-progress.enabled"] == "false"
    # the plan round-trips through the document the Spark job reads
    again = TablePlan.from_json(plan.to_json())
    assert again == plan
    assert json.loads(plan.to_json())["schema"] == "warpspeed.maintenance_plan/v1"


def test_asset_runs_wait_for_enough_commits_and_the_minimum_interval(scores_table: Any) -> None:
    state = read_table_state(scores_table, SCORES_TABLE)
    now = datetime.now(UTC)
    few = plan_table(POLICY, state, MaintenanceHistory(), now, trigger="asset")
    assert not few.due and few.skipped_reason == "17 new commits since last maintenance < 20"
    enough = TablePolicy(POLICY.identifier, trigger=TriggerPolicy(True, 10, 60))
    assert plan_table(enough, state, MaintenanceHistory(), now, trigger="asset").due
    recent = MaintenanceHistory(last_run_at=now - timedelta(minutes=10))
    gated = plan_table(enough, state, recent, now, trigger="asset")
    assert not gated.due and "min interval 60 min" in (gated.skipped_reason or "")
    not_driven = plan_table(TablePolicy(POLICY.identifier), state, MaintenanceHistory(), now, trigger="asset")
    assert not not_driven.due and "not asset-driven" in (not_driven.skipped_reason or "")


def _state(partitions: tuple[PartitionFiles, ...], snapshots: int = 1, manifests: int = 1) -> TableState:
    now = datetime.now(UTC)
    snaps = tuple(SnapshotInfo(i, now - timedelta(hours=snapshots - i)) for i in range(snapshots))
    return TableState("a.b", snapshots - 1, snaps, frozenset({snapshots - 1}), partitions, manifests)


def test_nothing_due_on_a_healthy_table() -> None:
    big = 120 * 1024 * 1024
    state = _state((PartitionFiles((("tenant_id", "t"),), (big, big, 1000)),), snapshots=5, manifests=2)
    history = MaintenanceHistory(datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) - timedelta(days=1))
    plan = plan_table(TablePolicy("a.b"), state, history, datetime.now(UTC))
    assert plan.due == ()
    assert "last cleanup 1.0 days ago < cadence 7.0 days" in plan.actions[3].reason


def test_small_bytes_trigger_and_partition_cap() -> None:
    mb = 1024 * 1024
    parts = tuple(PartitionFiles((("tenant_id", f"t{i}"),), (40 * mb, 40 * mb, 50 * mb)) for i in range(4))
    policy = TablePolicy("a.b", compaction=CompactionPolicy(min_small_bytes_mb=128, max_partitions_per_run=3))
    plan = plan_table(policy, _state(parts), MaintenanceHistory(), datetime.now(UTC))
    compaction = plan.actions[0]
    assert compaction.due and compaction.metrics["partitions_chosen"] == 3
    assert "1 more wait for the next run" in compaction.reason
    assert compaction.params["where"].count(" OR ") == 2


def test_expiry_keeps_retain_last_and_referenced_snapshots() -> None:
    state = _state((PartitionFiles((), (10,)),), snapshots=30)
    plan = plan_table(TablePolicy("a.b", snapshots=SnapshotPolicy(max_age_hours=10, retain_last=5)),
                      state, MaintenanceHistory(), datetime.now(UTC))
    # snapshots are 1..30 hours old (read a moment before planning): 21 are at least 10 h old,
    # none of them among the newest 5
    assert plan.actions[1].metrics["expirable"] == 21
    tagged = TableState(state.identifier, state.current_snapshot_id, state.snapshots,
                        frozenset({0, 29}), state.partitions, state.manifests)
    plan = plan_table(TablePolicy("a.b", snapshots=SnapshotPolicy(max_age_hours=10, retain_last=5)),
                      tagged, MaintenanceHistory(), datetime.now(UTC))
    assert plan.actions[1].metrics["expirable"] == 20  # the tagged oldest snapshot stays
    # an unpartitioned table compacts without a filter
    assert plan.actions[0].due is False


def test_partition_filter_quotes_values_and_nulls() -> None:
    assert partition_filter((("tenant_id", "o'neil"), ("model", None))) == (
        "(tenant_id = 'o\\'neil' AND model IS NULL)")
    assert partition_filter((("bucket", 3),)) == "(bucket = 3)"
