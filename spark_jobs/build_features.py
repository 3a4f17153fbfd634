"""Spark entry point: refresh ``features.account_features`` from changed raw date partitions.

Runs unchanged as an AWS Glue 5 job script and with local ``spark-submit``::

    spark-submit build_features.py --plan-uri s3://bucket/warpspeed/preprocessing/runs/<dag>/<run>/plan.json

The plan (written by :mod:`warpspeed.hooks.glue`) names, per raw source, the date
partitions that changed. Only those are read from raw storage; they replace their days in the
source's daily table (``features.<source>_daily``, one Iceberg overwrite per source), then the
features of the accounts a change can affect are recomputed from the daily tables and merged
into the features table with ``MERGE INTO`` on (tenant_id, account_id). A result summary
(snapshot ids and summaries) is written to the plan's ``summary_uri``.

The catalog is configured by the submitter (``spark.sql.catalog.<name>.*``); this file only
does I/O and calls the pure transforms of :mod:`spark_jobs.feature_transforms`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from spark_jobs.jobio import current_snapshot_id

PLAN_SCHEMA = "warpspeed.features_plan/v1"
SUMMARY_SCHEMA = "warpspeed.features_result/v1"
DAILY_TABLES = {
    "engagement_events": ("features.engagement_daily",
                          "tenant_id STRING, account_id STRING, dt DATE, events BIGINT, weighted_events DOUBLE"),
    "intent_signals": ("features.intent_daily",
                       "tenant_id STRING, account_id STRING, dt DATE, signals BIGINT, strength_sum DOUBLE, "
                       "strength_max DOUBLE"),
    "firmographics": ("features.firmographics_daily",
                      "tenant_id STRING, account_id STRING, dt DATE, employee_count DOUBLE, "
                      "annual_revenue DOUBLE, as_of TIMESTAMP"),
}
ACTIVITY_SOURCES = ("engagement_events", "intent_signals")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the job's command line; Glue's own arguments (``--JOB_ID`` ...) are ignored."""
    parser = argparse.ArgumentParser(description="Refresh Tier-2 account features")
    parser.add_argument("--plan-uri", required=True, help="URI of the refresh plan JSON")
    parser.add_argument("--catalog", default="warpspeed", help="Spark catalog holding the tables")
    args, _unknown = parser.parse_known_args(list(argv))
    return args



def snapshot_info(spark: Any, table: str, snapshot_id: int | None) -> dict[str, Any] | None:
    """Return ``{snapshot_id, operation, summary}`` of one snapshot of ``table``."""
    if snapshot_id is None:
        return None
    row = spark.sql(
        f"SELECT snapshot_id, operation, summary FROM {table}.snapshots WHERE snapshot_id = {int(snapshot_id)}"
    ).collect()[0]
    return {"snapshot_id": int(row["snapshot_id"]), "operation": row["operation"],
            "summary": dict(row["summary"] or {})}


def ensure_daily_tables(spark: Any, catalog: str) -> None:
    """Create the per-source daily tables (partitioned by day) if they are missing."""
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {catalog}.features")
    for table, ddl in DAILY_TABLES.values():
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS {catalog}.{table} ({ddl}) USING iceberg PARTITIONED BY (dt) "
            "TBLPROPERTIES ('format-version' = '2', 'write.distribution-mode' = 'hash')"
        )


def read_raw(spark: Any, raw_root: str, source: str, days: Sequence[str]) -> Any:
    """Read only the given daily partitions of a raw source (with a ``dt`` date column)."""
    from pyspark.sql import functions as F

    base = f"{raw_root.rstrip('/')}/{source}"
    return (
        spark.read.option("basePath", base)
        .parquet(*(f"{base}/dt={day}" for day in days))
        .withColumn("dt", F.to_date(F.col("dt").cast("string")))
    )


def days_filter(days: Sequence[str | date]) -> Any:
    """Return a Column that selects rows of the given days."""
    from pyspark.sql import functions as F

    return F.col("dt").isin([d if isinstance(d, date) else date.fromisoformat(d) for d in days])


def refresh_daily(spark: Any, plan: dict[str, Any], catalog: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replace the changed days of each source's daily table; return (snapshots, keys before/after)."""
    from spark_jobs.feature_transforms import KEYS, engagement_daily, firmographics_daily, intent_daily

    transforms = {"engagement_events": engagement_daily, "intent_signals": intent_daily,
                  "firmographics": firmographics_daily}
    snapshots: dict[str, Any] = {}
    touched: dict[str, Any] = {}
    for source, days in sorted(plan["changed"].items()):
        if not days:
            continue
        table = f"{catalog}.{DAILY_TABLES[source][0]}"
        before = current_snapshot_id(spark, table)
        daily = transforms[source](read_raw(spark, plan["raw_root"], source, days))
        daily.writeTo(table).overwrite(days_filter(days))
        after = current_snapshot_id(spark, table)
        snapshots[source] = snapshot_info(spark, table, after)
        # keys of the changed days, as they were (an account may have vanished) and as they are now
        now = spark.read.format("iceberg").option("snapshot-id", str(after)).load(table).where(days_filter(days))
        keys = now.select(*KEYS)
        if before is not None:
            was = spark.read.format("iceberg").option("snapshot-id", str(before)).load(table)
            keys = keys.unionByName(was.where(days_filter(days)).select(*KEYS))
        touched[source] = keys
    return snapshots, touched


def merge_group(
    spark: Any, target: str, group: str, computed: Any, columns: Sequence[str]
) -> dict[str, Any]:
    """Merge the rows of ``computed`` that changed into the features table; return what it did."""
    from pyspark.sql import functions as F

    from spark_jobs.feature_transforms import KEYS, changed_rows, merge_statement, split_unsafe_tenants

    computed, unsafe = split_unsafe_tenants(computed)
    refused = sorted(r[0] for r in unsafe.select("tenant_id").distinct().limit(100).collect())
    if refused:
        print(f"refusing {len(refused)} unsafe tenant ids from raw data in {group}: {refused!r}")
    current = spark.table(target).join(computed.select(*KEYS), list(KEYS), "left_semi")
    changes = (
        changed_rows(computed, current, columns)
        .withColumn("updated_at", F.lit(datetime.now(UTC)).cast("timestamp"))
        .cache()
    )
    rows = changes.count()
    tenants = sorted(r[0] for r in changes.select("tenant_id").distinct().collect())
    result: dict[str, Any] = {"group": group, "rows": rows, "tenants": tenants, "snapshot": None,
                              "refused_tenants": refused}
    if rows:
        view = f"warpspeed_feature_changes_{group}"
        changes.createOrReplaceTempView(view)
        all_columns = [f.name for f in spark.table(target).schema.fields]
        spark.sql(merge_statement(target, view, columns, all_columns, tenants))
        result["snapshot"] = snapshot_info(spark, target, current_snapshot_id(spark, target))
    changes.unpersist()
    return result


def refresh(spark: Any, plan: dict[str, Any], catalog: str) -> dict[str, Any]:
    """Run one refresh plan and return its result summary."""
    from spark_jobs.feature_transforms import (
        ACTIVITY_COLUMNS,
        FIRMOGRAPHIC_COLUMNS,
        KEYS,
        activity_exit_days,
        activity_features,
        affected_keys,
        latest_firmographics,
    )

    started = time.monotonic()
    ensure_daily_tables(spark, catalog)
    daily_snapshots, touched = refresh_daily(spark, plan, catalog)
    features_table = f"{catalog}.{plan['features_table']}"
    merges = []
    table_of = {s: f"{catalog}.{t}" for s, (t, _ddl) in DAILY_TABLES.items()}
    if "activity" in plan["groups"] and plan.get("as_of"):
        as_of = date.fromisoformat(plan["as_of"])
        previous = date.fromisoformat(plan["previous_as_of"]) if plan.get("previous_as_of") else None
        engagement, intent = spark.table(table_of["engagement_events"]), spark.table(table_of["intent_signals"])
        frames = [touched[s] for s in ACTIVITY_SOURCES if s in touched]
        if previous is None:  # first refresh: every account active in the window
            frames += [engagement.select(*KEYS), intent.select(*KEYS)]
        exit_days = activity_exit_days(previous, as_of)
        if exit_days:
            frames += [engagement.where(days_filter(exit_days)).select(*KEYS),
                       intent.where(days_filter(exit_days)).select(*KEYS)]
        if frames:
            keys = affected_keys(*frames).cache()
            merges.append(merge_group(spark, features_table, "activity",
                                      activity_features(engagement, intent, keys, as_of), ACTIVITY_COLUMNS))
            keys.unpersist()
    if "firmographics" in plan["groups"] and "firmographics" in touched:
        keys = affected_keys(touched["firmographics"]).cache()
        computed = latest_firmographics(spark.table(table_of["firmographics"]), keys)
        merges.append(merge_group(spark, features_table, "firmographics", computed, FIRMOGRAPHIC_COLUMNS))
        keys.unpersist()
    return {
        "schema": SUMMARY_SCHEMA,
        "run_key": plan["run_key"],
        "status": "succeeded",
        "as_of": plan.get("as_of"),
        "changed_partitions": {s: list(d) for s, d in sorted(plan["changed"].items()) if d},
        "daily_snapshots": daily_snapshots,
        "merges": merges,
        "changed_rows": sum(m["rows"] for m in merges),
        "changed_tenants": sorted({t for m in merges for t in m["tenants"]}),
        "features_snapshot_id": current_snapshot_id(spark, features_table),
        "duration_s": round(time.monotonic() - started, 3),
    }


def run(spark: Any, argv: Sequence[str]) -> int:
    """Refresh the features the plan ``argv`` names on ``spark`` (left running); 0 when done.

    The warm local engine calls this on a session of its own; :func:`main` is the
    ``spark-submit`` (Glue, EMR) entry.
    """
    from spark_jobs.jobio import read_document, write_text

    args = parse_args(argv)
    plan = read_document(spark, args.plan_uri, PLAN_SCHEMA)
    spark.sparkContext.setJobDescription(f"warpspeed features refresh {plan['run_key']}")
    summary = refresh(spark, plan, args.catalog)
    write_text(spark, plan["summary_uri"], json.dumps(summary, indent=1, sort_keys=True))
    print("WARPSPEED_RESULT " + json.dumps(
        {k: summary[k] for k in ("run_key", "changed_rows", "changed_tenants", "features_snapshot_id")}
    ))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job in a session of its own; a non-zero exit tells the submitter (Glue, EMR, spark-submit) it failed."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("warpspeed-build-features").getOrCreate()
    try:
        return run(spark, sys.argv[1:] if argv is None else argv)
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
