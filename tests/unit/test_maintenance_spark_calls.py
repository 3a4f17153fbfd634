"""The Spark job's CALL statements, built from a planner document (no Spark needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from maintenance.iceberg_maintenance import due_calls, summarise_rows, timestamp_literal
from warpspeed.config.maintenance_policy import CompactionPolicy, SnapshotPolicy, TablePolicy
from warpspeed.maintenance.plan import (
    MaintenanceHistory,
    PartitionFiles,
    SnapshotInfo,
    TableState,
    plan_table,
)


def _plan_doc() -> dict:
    now = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    snaps = tuple(SnapshotInfo(i, now - timedelta(hours=40 - i)) for i in range(40))
    parts = (
        PartitionFiles((("tenant_id", "t'1"), ("model", "churn_risk")), (100,) * 20),
        PartitionFiles((("tenant_id", "t2"), ("model", "churn_risk")), (10**9,)),
    )
    state = TableState("scores.account_scores", 39, snaps, frozenset({39}), parts, 50)
    policy = TablePolicy("scores.account_scores", snapshots=SnapshotPolicy(retain_last=7),
                         compaction=CompactionPolicy(min_small_files=4))
    plan = plan_table(policy, state, MaintenanceHistory(), now)
    return json.loads(plan.to_json())


def test_due_actions_become_calls_in_order() -> None:
    calls = due_calls(_plan_doc(), "warpspeed")
    assert [a for a, _ in calls] == [
        "rewrite_data_files", "expire_snapshots", "rewrite_manifests", "remove_orphan_files"]
    rewrite = calls[0][1]
    assert rewrite.startswith("CALL warpspeed.system.rewrite_data_files(table => 'scores.account_scores', "
                              "strategy => 'binpack', where => '(tenant_id = \\'t\\\\\\'1\\' AND ")
    assert "'partial-progress.enabled', 'true'" in rewrite
    assert "'target-file-size-bytes', '134217728'" in rewrite
    assert calls[1][1] == (
        "CALL warpspeed.system.expire_snapshots(table => 'scores.account_scores', "
        "older_than => TIMESTAMP '2026-11-19 21:00:00.000000+00:00', retain_last => 7, "
        "stream_results => true)")
    assert calls[2][1] == "CALL warpspeed.system.rewrite_manifests(table => 'scores.account_scores')"
    assert "older_than => TIMESTAMP '2026-11-17 21:00:00.000000+00:00'" in calls[3][1]


def test_not_due_actions_are_left_out() -> None:
    doc = _plan_doc()
    doc["actions"][0]["due"] = False
    assert next(a for a, _ in due_calls(doc, "cat")) == "expire_snapshots"


def test_timestamps_are_normalised_to_utc_and_rows_summarised() -> None:
    assert timestamp_literal("2026-01-01T02:00:00+02:00") == "TIMESTAMP '2026-01-01 00:00:00.000000+00:00'"
    assert summarise_rows("remove_orphan_files", [{"orphan_file_location": "f1"}]) == {
        "orphans_removed": 1, "orphan_files": ["f1"]}
    assert summarise_rows("rewrite_data_files", [{"rewritten_data_files_count": 3, "x": "y"},
                                                 {"rewritten_data_files_count": 2}]) == {
        "rewritten_data_files_count": 5}
