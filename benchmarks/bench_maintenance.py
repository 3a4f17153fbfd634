"""Iceberg maintenance on a table with 120 tiny Spark commits: figures before and after.

Builds a scores-shaped table in a throwaway state folder (one Spark process, one INSERT per
commit; ``WARPSPEED_BENCH_MAINT_COMMITS`` commits, default 120), plans it with the shipped
planner under a policy that keeps the newest 5 snapshots, runs the Spark procedures through the
local compute backend (``spark-submit``), and reports files, snapshots, manifests and full-scan
planning time before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

COMMITS = int(os.environ.get("WARPSPEED_BENCH_MAINT_COMMITS", "120"))
"""One-INSERT commits into the table (the size knob: the suite's smoke run uses a dozen)."""
PARTITIONS = [("t-000", "churn_risk"), ("t-001", "churn_risk"), ("t-002", "upsell_propensity"),
              ("t-003", "intent_surge")]
TABLE = "bench.account_scores"
BUILDER = """
import sys
from pyspark.sql import SparkSession
from warpspeed.compute.local.backend import LOCAL_SPARK_CONF, find_jars
from warpspeed.config.settings import WarpSpeedSettings

settings = WarpSpeedSettings.from_mapping({"home": sys.argv[1]})
builder = SparkSession.builder.master("local[2]").config(
    "spark.jars", ",".join(str(p) for p in find_jars(settings.jars_dir)))
for key, value in (LOCAL_SPARK_CONF | settings.catalog.spark_conf()).items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
partitions = %r
for i in range(%d):
    tenant, model = partitions[i %% len(partitions)]
    values = ", ".join(f"('{tenant}', '{model}', 'v1', 'a-{i}-{j}', {j}.5, 'b-{i}', current_timestamp())"
                       for j in range(3))
    spark.sql(f"INSERT INTO warpspeed.%s VALUES {values}")
spark.stop()
"""


def run() -> Iterator[dict]:
    """Build the table, maintain it once and yield the before/after figures."""
    from warpspeed.config.maintenance_policy import MaintenancePolicy
    from warpspeed.embedded.stack import scratch_settings
    from warpspeed.ledger.tables import SCORES_TABLE, TABLES
    from warpspeed.maintenance.service import IcebergMaintenanceService

    scores = next(t for t in TABLES if t.identifier == SCORES_TABLE)
    with scratch_settings(spark_master="local[2]") as settings:
        home = str(settings.home)
        catalog = settings.catalog.load()
        catalog.create_namespace_if_not_exists("bench")
        catalog.create_table(TABLE, schema=scores.schema, partition_spec=scores.partition_spec,
                             properties={"format-version": "2"})
        subprocess.run([sys.executable, "-c", BUILDER % (PARTITIONS, COMMITS, TABLE), home], check=True,
                       capture_output=True, env=os.environ | {"SPARK_LOCAL_IP": "127.0.0.1"})
        policy = MaintenancePolicy.from_dict({"tables": {TABLE: {
            "snapshots": {"max_age_hours": 0, "retain_last": 5},
            "compaction": {"min_small_files": 5},
            "manifests": {"max_manifests": 10},
        }}})
        hook = IcebergMaintenanceService(settings)
        key = "bench-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        (item,) = hook.plan(policy, "manual", key)
        outcome = hook.run(item["plan_uri"], key)
        before, after = outcome.record.before, outcome.record.after
        # planning time is noisy at this size: re-measure each side 5 times on fresh loads, take the median
        after_plans = sorted(hook.stats(TABLE).plan_seconds for _ in range(5))
        note = f"{COMMITS} one-INSERT commits into {len(PARTITIONS)} partitions, policy retain_last=5"
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


if __name__ == "__main__":
    for figure in run():
        print(figure)
