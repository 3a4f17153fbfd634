"""Iceberg maintenance on a table of 120 tiny commits: figures before and after, and its S3 reads.

Builds a scores-shaped table in a throwaway state folder whose tables live on its embedded S3
server (``WARPSPEED_BENCH_MAINT_COMMITS`` pyiceberg appends of three rows, default 120, as the
single-node engine commits), plans it with the shipped planner under a policy that keeps the newest
5 snapshots, runs the Spark procedures through the local compute backend (``spark-submit``), and
reports files, snapshots, manifests and full-scan planning time before and after, and the GETs and
HEADs of one full pyiceberg scan (as a score step reads) before and after, counted by the S3
server's counting proxy (``s3_get_head_*``, which ``bench_s3`` reported with a second table and a
second maintenance run of its own).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

COMMITS = int(os.environ.get("WARPSPEED_BENCH_MAINT_COMMITS", "120"))
"""Three-row commits into the table (the size knob: the suite's smoke run uses a dozen)."""
PARTITIONS = [("t-000", "churn_risk"), ("t-001", "churn_risk"), ("t-002", "upsell_propensity"),
              ("t-003", "intent_surge")]
TABLE = "bench.account_scores"


def commit_small_slices(catalog: Any, commits: int) -> None:
    """Create :data:`TABLE` and append ``commits`` slices of three rows, one partition each."""
    import pyarrow as pa

    from warpspeed.ledger.tables import SCORES

    catalog.create_namespace_if_not_exists("bench")
    table = catalog.create_table(TABLE, schema=SCORES.schema, partition_spec=SCORES.partition_spec,
                                 properties={"format-version": "2"})
    arrow_schema = table.schema().as_arrow()
    for i in range(commits):
        tenant, model = PARTITIONS[i % len(PARTITIONS)]
        rows = [{"tenant_id": tenant, "model": model, "model_version": "v1", "account_id": f"a-{i}-{j}",
                 "score": j + 0.5, "batch_id": f"b-{i}", "scored_at": datetime.now(UTC)} for j in range(3)]
        table.append(pa.Table.from_pylist(rows, schema=arrow_schema))


def scan_get_head(settings: Any, log_path: Path) -> tuple[int, int]:
    """Scan the table in full with pyiceberg (as a score step); return (GETs + HEADs, rows) the scan made."""
    from warpspeed.ledger.s3_requests import count_requests, get_head, read_request_log

    started = time.time()
    rows = settings.for_component("score").catalog.load().load_table(TABLE).scan().to_arrow().num_rows
    counts = count_requests(read_request_log(log_path, started, time.time()), components=None)
    return get_head(counts), rows


def run() -> Iterator[dict]:
    """Build the table, maintain it once and yield the before/after figures."""
    from warpspeed.config.maintenance_policy import MaintenancePolicy
    from warpspeed.embedded.stack import scratch_settings
    from warpspeed.maintenance.service import IcebergMaintenanceService

    with scratch_settings(spark_master="local[2]", local_spark_idle_seconds="0") as settings:
        log_path = settings.s3_request_log()
        assert log_path is not None, "the scratch state folder's storage is on its embedded S3 server"
        commit_small_slices(settings.catalog.load(), COMMITS)
        get_head_before, rows_before = scan_get_head(settings, log_path)
        policy = MaintenancePolicy.from_dict({"tables": {TABLE: {
            "snapshots": {"max_age_hours": 0, "retain_last": 5},
            "compaction": {"min_small_files": 5},
            "manifests": {"max_manifests": 10},
        }}})
        hook = IcebergMaintenanceService(settings)
        key = "bench-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        (item,) = hook.plan(policy, "manual", key)
        outcome = hook.run(item["plan_uri"], key)
        get_head_after, rows_after = scan_get_head(settings, log_path)
        if rows_after != rows_before:
            raise RuntimeError(f"maintenance changed the table's rows: {rows_before} -> {rows_after}")
        before, after = outcome.record.before, outcome.record.after
        # planning time is noisy at this size: re-measure each side 5 times on fresh loads, take the median
        after_plans = sorted(hook.stats(TABLE).plan_seconds for _ in range(5))
        note = f"{COMMITS} three-row commits into {len(PARTITIONS)} partitions, policy retain_last=5"
        yield {"name": "maint_files_before", "value": before.data_files, "unit": "files", "note": note}
        yield {"name": "maint_files_after", "value": after.data_files, "unit": "files",
               "note": f"ratio {after.data_files / before.data_files:.3f}"}
        yield {"name": "maint_snapshots_before", "value": before.snapshots, "unit": "snapshots", "note": note}
        yield {"name": "maint_snapshots_after", "value": after.snapshots, "unit": "snapshots",
               "note": f"ratio {after.snapshots / before.snapshots:.3f} (retain_last 5 + rewrite_manifests)"}
        yield {"name": "maint_manifests_before", "value": before.manifests, "unit": "manifests", "note": ""}
        yield {"name": "maint_manifests_after", "value": after.manifests, "unit": "manifests", "note": ""}
        yield {"name": "maint_metadata_bytes_ratio",
               "value": round(after.metadata_bytes / before.metadata_bytes, 3), "unit": "ratio",
               "note": f"{before.metadata_bytes} -> {after.metadata_bytes} bytes"}
        yield {"name": "maint_plan_time_ratio",
               "value": round(after.plan_seconds / before.plan_seconds, 3), "unit": "ratio",
               "note": f"pyiceberg full-scan plan_files(): {before.plan_seconds * 1000:.1f} ms before, "
                       f"{after.plan_seconds * 1000:.1f} ms after (first load; after re-measured median "
                       f"{after_plans[2] * 1000:.1f} ms)"}
        yield {"name": "maint_spark_s", "value": round(outcome.record.spark_seconds, 1), "unit": "s",
               "note": "spark-submit of compaction+expiry+manifests+orphans on local[2]"}
        scan = (f"one pyiceberg full scan of the table ({rows_before} rows, {before.data_files} files, "
                f"{before.manifests} manifests, {before.snapshots} snapshots)")
        yield {"name": "s3_get_head_per_window_before_maintenance", "value": get_head_before, "unit": "requests",
               "note": scan}
        yield {"name": "s3_get_head_per_window_after_maintenance", "value": get_head_after, "unit": "requests",
               "note": f"the same scan after compaction, manifest rewrite and expiry ({after.data_files} files, "
                       f"{after.manifests} manifests, {after.snapshots} snapshots)"}
        yield {"name": "s3_get_head_cut_by_maintenance", "value": round(get_head_before / max(get_head_after, 1), 1),
               "unit": "ratio", "note": "goal >= 5"}


if __name__ == "__main__":
    for figure in run():
        print(figure)
