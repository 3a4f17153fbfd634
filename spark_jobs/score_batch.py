"""Spark entry point: score one batch manifest into the Iceberg scores table.

Usage (EMR step, Glue or local ``spark-submit``)::

    spark-submit score_batch.py --batch-manifest s3://bucket/warpspeed/windows/<w>/batches/<b>.json

The catalog is configured by the submitter through ``spark.sql.catalog.<name>.*``; this file
only parses arguments, does I/O and calls the pure transforms in :mod:`spark_jobs.scoring`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from spark_jobs.jobio import current_snapshot_id

BATCH_SCHEMA = "warpspeed.batch/v1"
SUMMARY_SCHEMA = "warpspeed.batch_result/v1"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the job's command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-manifest", required=True, help="URI of the batch manifest JSON")
    parser.add_argument("--catalog", default="warpspeed", help="Spark catalog holding the tables")
    return parser.parse_args(argv)



def shuffle_partitions_for(estimated_rows: int, cores: int) -> int:
    """Size shuffle partitions from the batch: about 250k rows each, at least the core count."""
    return max(cores, min(400, estimated_rows // 250_000 + 1))


def load_models(spark: Any, models_uri: str, keys: set[tuple[str, str]]) -> tuple[dict, dict]:
    """Load each (model, version); return (models, errors) keyed by (model, version)."""
    from spark_jobs.jobio import read_text
    from spark_jobs.models import ModelError, parse_model

    models, errors = {}, {}
    for model, version in sorted(keys):
        uri = f"{models_uri.rstrip('/')}/{model}/{version}.json"
        try:
            models[(model, version)] = parse_model(
                read_text(spark, uri), expect_model=model, expect_version=version
            )
        except FileNotFoundError:
            errors[(model, version)] = f"model {model} {version} not found at {uri}"
        except ModelError as err:
            errors[(model, version)] = f"model {model} {version} is invalid: {err}"
    return models, errors


def run_batch(spark: Any, manifest: dict[str, Any], catalog: str) -> dict[str, Any]:
    """Score a batch and return its result summary."""
    from pyspark.sql import functions as F

    from spark_jobs.scoring import missing_feature_counts, score_accounts, slice_condition

    started = time.monotonic()
    members = manifest["members"]
    tenants = sorted({m["tenant_id"] for m in members})
    spark.conf.set(
        "spark.sql.shuffle.partitions",
        str(shuffle_partitions_for(int(manifest["estimated_rows"]), spark.sparkContext.defaultParallelism)),
    )
    models, model_errors = load_models(
        spark, manifest["models_uri"], {(m["model"], m["model_version"]) for m in members}
    )
    features_table = f"{catalog}.{manifest['features_table']}"
    scores_table = f"{catalog}.{manifest['scores_table']}"
    features_snapshot = current_snapshot_id(spark, features_table)
    reader = spark.read.format("iceberg")
    if features_snapshot is not None:
        reader = reader.option("snapshot-id", str(features_snapshot))
    features = reader.load(features_table).where(F.col("tenant_id").isin(tenants))

    feature_columns = sorted({f for model in models.values() for f in model.features})
    per_tenant = {
        row["tenant_id"]: (int(row["accounts"]), int(row["accounts_missing_features"]))
        for row in missing_feature_counts(features, feature_columns).collect()
    }
    ok_members = [m for m in members if (m["model"], m["model_version"]) in models]
    members_df = spark.createDataFrame(
        [(m["tenant_id"], m["model"], m["model_version"]) for m in ok_members],
        "tenant_id string, model string, model_version string",
    )
    scored_at = datetime.now(UTC)
    scored = (
        score_accounts(features, members_df, models)
        .withColumn("batch_id", F.lit(manifest["batch_id"]))
        .withColumn("scored_at", F.lit(scored_at).cast("timestamp"))
    )
    pairs = [(m["tenant_id"], m["model"]) for m in ok_members]
    if pairs:
        scored.writeTo(scores_table).overwrite(F.expr(slice_condition(pairs)))

    member_results = []
    for m in members:
        accounts, missing = per_tenant.get(m["tenant_id"], (0, 0))
        error = model_errors.get((m["model"], m["model_version"]))
        member_results.append(
            {
                "request_id": m["request_id"],
                "tenant_id": m["tenant_id"],
                "model": m["model"],
                "model_version": m["model_version"],
                "status": "failed" if error else "scored",
                "error": error,
                "rows": 0 if error else accounts,
                "accounts_missing_features": 0 if error else missing,
            }
        )
    return {
        "schema": SUMMARY_SCHEMA,
        "batch_id": manifest["batch_id"],
        "window_id": manifest["window_id"],
        "workload": manifest["workload"],
        "status": "succeeded" if not model_errors else ("partial" if ok_members else "failed"),
        "members": member_results,
        "rows": sum(r["rows"] for r in member_results),
        "tenants_without_features": [t for t in tenants if t not in per_tenant],
        "missing_feature_policy": "imputed with each model's per-feature impute value",
        "features_snapshot_id": features_snapshot,
        "scores_snapshot_id": current_snapshot_id(spark, scores_table) if pairs else None,
        "scored_at": scored_at.isoformat(),
        "duration_s": round(time.monotonic() - started, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; the exit code tells the submitter whether the batch failed."""
    from pyspark.sql import SparkSession

    from spark_jobs.jobio import read_document, write_text

    args = parse_args(sys.argv[1:] if argv is None else argv)
    spark = SparkSession.builder.appName("warpspeed-score").getOrCreate()
    try:
        manifest = read_document(spark, args.batch_manifest, BATCH_SCHEMA)
        spark.sparkContext.setJobDescription(f"warpspeed batch {manifest['batch_id']}")
        summary = run_batch(spark, manifest, args.catalog)
        write_text(spark, manifest["summary_uri"], json.dumps(summary, indent=1, sort_keys=True))
        print(f"WARPSPEED_RESULT {json.dumps({k: summary[k] for k in ('batch_id', 'status', 'rows')})}")
        return 0 if summary["status"] != "failed" else 2
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
