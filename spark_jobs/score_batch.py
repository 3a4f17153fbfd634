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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from spark_jobs.jobio import SCORES_TABLE_PROPERTIES, SnapshotStats, current_snapshot, current_snapshot_id

BATCH_SCHEMA = "warpspeed.batch/v1"
SUMMARY_SCHEMA = "warpspeed.batch_result/v1"
#: Rows per Arrow batch sent to an MLflow model's Python worker (Spark's default is 10,000): each
#: batch costs a pandas conversion and a ``predict`` call of fixed overhead, so fewer, larger
#: batches score faster; 100k rows of a few dozen features are tens of MB.
ARROW_BATCH_ROWS = 100_000


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the job's command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-manifest", required=True, help="URI of the batch manifest JSON")
    parser.add_argument("--catalog", default="warpspeed", help="Spark catalog holding the tables")
    return parser.parse_args(argv)



def shuffle_partitions_for(estimated_rows: int, cores: int) -> int:
    """Size shuffle partitions from the batch: about 250k rows each, at least the core count."""
    return max(cores, min(400, estimated_rows // 250_000 + 1))


#: Iceberg's default read split size: the most a read task takes at once.
MAX_SPLIT_BYTES = 128 << 20


def read_split_size(features: SnapshotStats, batch_rows: int, cores: int) -> int:
    """Return a read split size that deals the batch's feature files into equal tasks, in whole waves.

    Iceberg packs files into read tasks up to the split size, a small file weighing its
    ``open_file_cost``. Left to itself it makes, say, 5 tasks for 2 cores, and the fifth runs
    alone while a core idles. The batch's files are estimated from the snapshot summary (its rows
    at the table's mean rows and bytes per file). Of the files-per-task counts that keep a task
    within :data:`MAX_SPLIT_BYTES`, the one with the shortest run (waves x files per task) wins;
    among equals, the one closest to two tasks per core (room to even out a slow task).
    """
    if features.data_files <= 0 or features.records <= 0:
        return MAX_SPLIT_BYTES
    rows_per_file = max(1, features.records // features.data_files)
    files = max(1, min(features.data_files, -(-batch_rows // rows_per_file)))
    weight = max(features.files_bytes // features.data_files, features.open_file_cost, 1)
    if weight >= MAX_SPLIT_BYTES:
        return MAX_SPLIT_BYTES

    def cost(per_task: int) -> tuple[int, int]:
        tasks = -(-files // per_task)
        return -(-tasks // cores) * per_task, abs(tasks - 2 * cores)

    per_task = min(range(1, min(files, MAX_SPLIT_BYTES // weight) + 1), key=cost)
    # half a file of slack, so files a little heavier than the mean still pack per_task to a task
    return min(MAX_SPLIT_BYTES, per_task * weight + weight // 2)


def load_models(
    spark: Any, manifest: dict[str, Any], keys: set[tuple[str, str]], columns: Mapping[str, str], table: str
) -> tuple[dict, dict]:
    """Load and check each (model, version); return (loaded, errors) keyed by (model, version).

    A model that is missing, fails to load or reads a column ``table`` lacks or holds as
    something other than numbers (``columns``: name -> Spark SQL type) goes to ``errors`` with
    the reason; nothing has been scored yet when this returns. MLflow models are loaded
    by the executors' Python workers, which keep them for scoring (no trial load in the driver).
    """
    from spark_jobs.flavours import check_inputs, default_spec, load_model, warm_pyfunc_models
    from spark_jobs.models import ModelError

    specs = manifest.get("models") or {}
    models, errors = {}, {}
    for model, version in sorted(keys):
        try:
            loaded = load_model(spark, model, version, specs.get(model) or default_spec(manifest["models_uri"]))
            check_inputs(loaded, columns, table)
            models[(model, version)] = loaded
        except ModelError as err:
            errors[(model, version)] = str(err)
    shipped = {m.shipped_name: key for key, m in models.items() if m.shipped_name}
    for name, reason in warm_pyfunc_models(spark, sorted(shipped)).items():
        key = shipped[name]
        errors[key] = f"model {key[0]} {key[1]} at {models.pop(key).uri} failed to load: {reason}"
    return models, errors


def ensure_scores_table(spark: Any, table: str, features: Any, tenant_column: str, entity_key: Sequence[str]) -> None:
    """Create the scores table (and its namespace) if missing, key types taken from the features."""
    types = {f.name: f.dataType.simpleString() for f in features.schema.fields}
    namespace = table.rsplit(".", 1)[0]
    properties = ", ".join(f"'{k}'='{v}'" for k, v in SCORES_TABLE_PROPERTIES.items())  # constants, no data
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
    columns = ", ".join(
        [f"`{tenant_column}` {types[tenant_column]}", "model string", "model_version string",
         *(f"`{k}` {types[k]}" for k in entity_key), "score double", "batch_id string", "scored_at timestamp"]
    )
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {table} ({columns}) USING iceberg "
        f"PARTITIONED BY (`{tenant_column}`, model) TBLPROPERTIES ({properties})"
    )


class TenantCounter:
    """Count each scored tenant's rows and rows with a missing feature while they are written.

    :meth:`observe` attaches an observed metric (:func:`spark_jobs.scoring.observe_tenant_counts`)
    to every scoring part's input, so the counts come out of the write itself instead of a
    second scan of the features. If two tenants' keys collided, :meth:`counts` falls back to
    that second scan (:func:`spark_jobs.scoring.missing_feature_counts`).
    """

    def __init__(self, spark: Any, tenants: Sequence[str], tenant_column: str, feature_columns: Sequence[str]) -> None:
        from spark_jobs.scoring import tenant_keys

        self.tenants, self.tenant_column, self.feature_columns = list(tenants), tenant_column, list(feature_columns)
        self.keys = tenant_keys(spark, self.tenants)
        self.exact = len(set(self.keys.values())) == len(self.keys)
        self.observations: list[Any] = []

    def observe(self, rows: Any) -> Any:
        """Return ``rows`` with the counting metrics attached (unchanged when keys collide)."""
        from pyspark.sql import Observation

        from spark_jobs.scoring import observe_tenant_counts

        if not self.exact:
            return rows
        observation = Observation(f"warpspeed_counts_{len(self.observations)}")
        self.observations.append(observation)
        return observe_tenant_counts(rows, observation, self.tenant_column, self.feature_columns, len(self.tenants))

    def counts(self, features: Any) -> dict[str, tuple[int, int]]:
        """Return tenant -> (rows, rows with a missing feature) after the write; tenants without rows are absent."""
        from pyspark.sql import functions as F

        from spark_jobs.scoring import decode_tenant_counts, missing_feature_counts

        if self.exact:
            counts: dict[str, tuple[int, int]] = {}
            for observation in self.observations:  # a tenant in two parts was read twice: same counts
                counts |= decode_tenant_counts(observation.get, self.keys)
            return counts
        rows = features.where(F.col(self.tenant_column).isin(self.tenants))
        return {
            row[self.tenant_column]: (int(row["accounts"]), int(row["accounts_missing_features"]))
            for row in missing_feature_counts(rows, self.feature_columns, self.tenant_column).collect()
        }


def write_scores(scored: Any, table: str, condition: str) -> None:
    """Overwrite the slices ``condition`` selects with ``scored`` in one Iceberg commit.

    ``distribution-mode=none``: each task writes its rows straight to the partitions it holds
    (Iceberg's fanout writer), without the shuffle and sort that the default hash distribution
    adds; the features are read grouped by tenant, so each task still writes few, large files.
    """
    from pyspark.sql import functions as F

    scored.writeTo(table).option("distribution-mode", "none").overwrite(F.expr(condition))


def batch_status(errors: int, scored: int) -> str:
    """Return ``succeeded`` (no member failed), ``partial`` or ``failed`` (nothing scored)."""
    return "succeeded" if not errors else ("partial" if scored else "failed")


def run_batch(spark: Any, manifest: dict[str, Any], catalog: str) -> dict[str, Any]:
    """Score a batch and return its result summary."""
    from pyspark.sql import functions as F

    from spark_jobs.batch_summary import batch_summary
    from spark_jobs.scoring import score_members, slice_condition

    started = time.monotonic()
    timings: dict[str, float] = {}
    mark = [started]

    def lap(phase: str) -> None:
        now = time.monotonic()
        timings[phase] = round(now - mark[0], 3)
        mark[0] = now

    members = manifest["members"]
    tenant_column = manifest.get("tenant_column") or "tenant_id"
    entity_key = list(manifest.get("entity_key") or ["account_id"])
    tenants = sorted({m["tenant_id"] for m in members})
    spark.conf.set(
        "spark.sql.shuffle.partitions",
        str(shuffle_partitions_for(int(manifest["estimated_rows"]), spark.sparkContext.defaultParallelism)),
    )
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    features_table = f"{catalog}.{manifest['features_table']}"
    scores_table = f"{catalog}.{manifest['scores_table']}"
    snapshot = current_snapshot(spark, features_table)
    features_snapshot = snapshot.snapshot_id if snapshot else None
    lap("snapshot")
    reader = spark.read.format("iceberg")
    if snapshot is not None:
        split = read_split_size(snapshot, int(manifest["estimated_rows"]), spark.sparkContext.defaultParallelism)
        reader = reader.option("snapshot-id", str(snapshot.snapshot_id)).option("split-size", str(split))
    all_features = reader.load(features_table)
    for column in (tenant_column, *entity_key):
        if column not in all_features.columns:
            raise ValueError(f"{features_table} has no column {column!r} (tenant_column/entity_key of the workload)")
    features = all_features.where(F.col(tenant_column).isin(tenants))
    lap("features")
    models, model_errors = load_models(
        spark, manifest, {(m["model"], m["model_version"]) for m in members},
        {f.name: f.dataType.simpleString() for f in all_features.schema.fields}, features_table,
    )

    lap("models")
    feature_columns = sorted({f for model in models.values() for f in model.inputs})
    ok_members = [m for m in members if (m["model"], m["model_version"]) in models]
    scored_at = datetime.now(UTC)
    counter = TenantCounter(spark, sorted({m["tenant_id"] for m in ok_members}), tenant_column, feature_columns)
    lap("keys")
    scored = (
        score_members(features, [(m["tenant_id"], m["model"], m["model_version"]) for m in ok_members],
                      models, tenant_column, entity_key, observe=counter.observe)
        .withColumn("batch_id", F.lit(manifest["batch_id"]))
        .withColumn("scored_at", F.lit(scored_at).cast("timestamp"))
    )
    pairs = [(m["tenant_id"], m["model"]) for m in ok_members]
    lap("plan")
    if pairs:
        ensure_scores_table(spark, scores_table, all_features, tenant_column, entity_key)
        lap("ensure")
        write_scores(scored, scores_table, slice_condition(pairs, tenant_column))
    lap("write")
    per_tenant = counter.counts(features) if pairs else {}
    lap("counts")

    scores_snapshot = current_snapshot_id(spark, scores_table) if pairs else None
    lap("scores_snapshot")
    return batch_summary(
        manifest, flavours={k: v.flavour for k, v in models.items()}, errors=model_errors, per_tenant=per_tenant,
        snapshots=(features_snapshot, scores_snapshot), scored_at=scored_at, started=started,
        read_tenants=counter.tenants, timings=timings,
    )


def run(spark: Any, argv: Sequence[str]) -> int:
    """Score the batch ``argv`` names on ``spark`` (left running); the code tells whether the batch failed.

    The warm local engine calls this on a session of its own; :func:`main` is the ``spark-submit`` entry.
    """
    from spark_jobs.jobio import read_document, write_text

    args = parse_args(argv)
    manifest = read_document(spark, args.batch_manifest, BATCH_SCHEMA)
    spark.sparkContext.setJobDescription(f"warpspeed batch {manifest['batch_id']}")
    summary = run_batch(spark, manifest, args.catalog)
    write_text(spark, manifest["summary_uri"], json.dumps(summary, indent=1, sort_keys=True))
    print(f"WARPSPEED_RESULT {json.dumps({k: summary[k] for k in ('batch_id', 'status', 'rows')})}")
    if summary["status"] == "succeeded":
        return 0
    # a partial batch is not a success: the submitter records it FAILED and its task retries
    errors = sorted({m["error"] for m in summary["members"] if m["error"]})
    print(f"WarpSpeedModelError: {summary['status']} batch, {len(errors)} model version(s) unusable: "
          f"{'; '.join(errors)[:1500]}", file=sys.stderr, flush=True)
    return 2 if summary["status"] == "failed" else 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job in a session of its own; the exit code tells the submitter whether the batch failed."""
    from pyspark.sql import SparkSession

    argv = sys.argv[1:] if argv is None else argv
    parse_args(argv)  # a bad command line fails before Spark starts
    spark = SparkSession.builder.appName("warpspeed-score").getOrCreate()
    try:
        return run(spark, argv)
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
