"""End to end: a scores-shaped table with 120 small commits (a file each), maintained by `airflow dags test`."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.loopback import LineageSink, lineage_sink
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.stack import airflow_env
from warpspeed.ledger.tables import MAINTENANCE_RUNS_TABLE, SCORES
from warpspeed.lineage.datasets import iceberg_table
from warpspeed.lineage.spark import JAR_GLOB, listener_jar
from warpspeed.storage.documents import local_path

if TYPE_CHECKING:
    from tests.conftest import SessionS3
    from tests.dags.conftest import AirflowCommands

pytestmark = pytest.mark.integration

TABLE = "maint_e2e.account_scores"  # scores schema and partitioning, isolated from other tests
PARTITIONS = [("t-000", "churn_risk"), ("t-001", "churn_risk"), ("t-002", "upsell_propensity"),
              ("t-003", "intent_surge")]
COMMITS = 120
RETAIN_LAST = 5
POLICY = f"""
tables:
  {TABLE}:
    snapshots: {{max_age_hours: 0, retain_last: {RETAIN_LAST}}}
    compaction: {{min_small_files: 5, partial_progress_max_commits: 1}}  # one compaction commit
    manifests: {{max_manifests: 10}}
"""


def _checksum(table: Any, snapshot_id: int | None = None) -> tuple[int, str]:
    """Return (rows, sha256 of the sorted rows) of the table or one of its snapshots."""
    cols = ("tenant_id", "model", "account_id", "score", "batch_id")
    rows = sorted(table.scan(selected_fields=cols, snapshot_id=snapshot_id).to_arrow().to_pylist(),
                  key=lambda r: tuple(str(r[c]) for c in cols))
    return len(rows), hashlib.sha256(repr([tuple(r[c] for c in cols) for r in rows]).encode()).hexdigest()


@pytest.fixture(scope="module")
def maint_settings(spark_home: Path) -> WarpSpeedSettings:
    """Return settings on the state folder of the session's SparkSession (its REST catalog running)."""
    return WarpSpeedSettings.from_mapping({"home": str(spark_home)})


@pytest.fixture(scope="module")
def small_commit_table(spark: Any, maint_settings: WarpSpeedSettings) -> dict[str, Any]:
    """Create the table with pyiceberg, then commit 120 small files to it one at a time, as 120 Spark jobs would.

    One Spark write makes the 120 files (3 rows each, one per task) in a staging table; Iceberg's own
    ``newAppend`` (what a Spark INSERT commits with, manifests merged the same way) then adds them to the table
    one per commit: the 120 snapshots and files of 120 INSERTs, for one Spark job instead of 120.
    """
    catalog = maint_settings.catalog.load()
    catalog.create_namespace_if_not_exists("maint_e2e")
    staging = f"{TABLE}_files"
    for name in (TABLE, staging):
        if catalog.table_exists(name):
            catalog.drop_table(name)
    for name, extra in ((TABLE, {}), (staging, {"write.distribution-mode": "none"})):  # none: a task, a file
        catalog.create_table(name, schema=SCORES.schema, partition_spec=SCORES.partition_spec,
                             properties={"format-version": "2", **extra})
    # row 3i+j is batch i's j-th row; range slices are contiguous, so slice i holds batch i: one task, one
    # file. Built in the JVM: rows from Python would start a Python worker per task.
    from pyspark.sql import functions as F

    i, j = F.floor(F.col("id") / 3).cast("int"), (F.col("id") % 3).cast("int")
    pair = i % len(PARTITIONS) + 1
    spark.range(0, COMMITS * 3, 1, COMMITS).select(
        F.element_at(F.array(*(F.lit(t) for t, _ in PARTITIONS)), pair).alias("tenant_id"),
        F.element_at(F.array(*(F.lit(m) for _, m in PARTITIONS)), pair).alias("model"),
        F.lit("v1").alias("model_version"),
        F.concat(F.lit("acct-"), i.cast("string"), F.lit("-"), j.cast("string")).alias("account_id"),
        (i + j / 10).alias("score"),
        F.concat(F.lit("batch-"), i.cast("string")).alias("batch_id"),
        F.current_timestamp().alias("scored_at"),
    ).writeTo(f"warpspeed.{staging}").append()
    load = spark.sparkContext._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable
    tasks = load(spark._jsparkSession, f"warpspeed.{staging}").newScan().planFiles().iterator()
    files = []
    while tasks.hasNext():
        files.append(tasks.next().file())
    assert len(files) == COMMITS, f"{len(files)} files written, not one per batch"
    target = load(spark._jsparkSession, f"warpspeed.{TABLE}")
    for data_file in sorted(files, key=lambda f: int(str(f.path()).rsplit("/", 1)[-1].split("-")[0])):  # task id
        target.newAppend().appendFile(data_file).commit()
    catalog.drop_table(staging)  # not purged: its files are the table's now
    table = catalog.load_table(TABLE)
    parent = {s.snapshot_id: s.parent_snapshot_id for s in table.snapshots()}
    snapshots, current = [], table.current_snapshot().snapshot_id  # oldest first, by ancestry: commits share a ms
    while current is not None:
        snapshots.insert(0, current)
        current = parent[current]
    return {
        "checksum": _checksum(table),
        "snapshots": snapshots,
        # expected contents of the newest snapshots (the ones retention keeps)
        "as_of": {s: _checksum(table, s) for s in snapshots[-RETAIN_LAST:]},
        "location": table.location(),
    }


def backing_file(uri: str, s3: SessionS3) -> Path:
    """Return the file that holds the object (or file) at ``uri``: S3Proxy keeps ``<basedir>/<bucket>/<key>``."""
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return s3.server.basedir / bucket / key
    return local_path(uri)


@pytest.fixture
def sink() -> Iterator[LineageSink]:
    """Receive the run's OpenLineage events (the tasks' and the maintenance job's Spark application's)."""
    with lineage_sink() as running:
        yield running


def check_lineage(sink: LineageSink, settings: WarpSpeedSettings) -> None:
    """Issue 25: the maintain task reports the table before and after; its spark-submit run hangs under it."""
    task = "warpspeed_iceberg_maintenance.maintain"
    events = sink.snapshot()
    (maintain,) = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == task]
    table = iceberg_table(settings.catalog, TABLE)
    (out,) = [o for o in maintain["outputs"] if (o["namespace"], o["name"]) == (table.namespace, table.name)]
    assert out["outputFacets"]["outputStatistics"] == {**out["outputFacets"]["outputStatistics"],
                                                       "rowCount": COMMITS * 3, "fileCount": len(PARTITIONS)}
    spark = [e for e in events if (e["run"].get("facets") or {}).get("parent", {}).get("job", {}).get("name") == task]
    assert spark, f"no Spark event under {task}: {sorted({e['job']['name'] for e in events})}"
    assert {e["run"]["facets"]["parent"]["run"]["runId"] for e in spark} == {maintain["run"]["runId"]}


def test_maintenance_dag_compacts_expires_and_removes_only_old_orphans(
    maint_settings: WarpSpeedSettings, small_commit_table: dict[str, Any], tmp_path: Path, airflow_db_url: str,
    airflow_commands: Callable[[dict[str, str]], AirflowCommands], sink: LineageSink, s3: SessionS3,
) -> None:
    assert listener_jar(maint_settings.jars_dir), f"no {JAR_GLOB} in {maint_settings.jars_dir}: run make setup"
    data_dir = f"{small_commit_table['location']}/data/tenant_id=t-000/model=churn_risk"
    orphans = [f"{data_dir}/00000-0-orphan-from-a-crashed-write.parquet",
               f"{data_dir}/00000-0-orphan-of-a-running-write.parquet"]
    storage = maint_settings.storage()
    for uri in orphans:  # written as a crashed writer would have: through the S3 API
        storage.write_bytes(uri, b"PAR1 not referenced by any snapshot")
    old_orphan, young_orphan = (backing_file(uri, s3) for uri in orphans)  # aged by their files' mtime
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old_orphan, (ten_days_ago, ten_days_ago))
    os.utime(young_orphan, (time.time() - 3600, time.time() - 3600))

    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY, encoding="utf-8")
    env = airflow_env(maint_settings.home, None, db_url=airflow_db_url) | {  # a copy of the migrated template
        "AIRFLOW__OPENLINEAGE__TRANSPORT": sink.transport(), "AIRFLOW__OPENLINEAGE__NAMESPACE": "warpspeed-test"}
    code, log = airflow_commands(env).run(
        ["dags", "test", "warpspeed_iceberg_maintenance", "2026-11-20T03:00:00+00:00",
         "-c", json.dumps({"policy_file": str(policy_file)})], tmp_path / "dags_test.log")
    assert code == 0, log[-6000:]

    catalog = maint_settings.catalog.load()
    runs = [r for r in catalog.load_table(MAINTENANCE_RUNS_TABLE).scan().to_arrow().to_pylist()
            if r["table_name"] == TABLE]
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["status"] == "succeeded"
    assert run["actions"] == ["rewrite_data_files", "expire_snapshots", "rewrite_manifests",
                              "remove_orphan_files"]
    # files: 120 one-commit files -> one file per partition
    assert run["data_files_before"] == COMMITS and run["data_files_after"] == len(PARTITIONS)
    assert run["mean_file_bytes_after"] > run["mean_file_bytes_before"]  # parquet footers dominate
    # snapshots: retain_last survive expiry, then rewrite_manifests adds one
    assert run["snapshots_before"] == COMMITS
    assert run["snapshots_after"] == RETAIN_LAST + 1
    # Spark's appends merge manifests on their own, so fewer than 120 but over the limit of 10
    assert run["manifests_before"] > 10 and run["manifests_after"] <= 2
    assert run["metadata_bytes_after"] < run["metadata_bytes_before"]
    assert run["records_before"] == run["records_after"] == COMMITS * 3
    assert run["orphans_removed"] == 1
    assert "Maintenance report for maint_e2e.account_scores" in log
    check_lineage(sink, maint_settings)

    # rows unchanged: count and checksum
    table = catalog.load_table(TABLE)
    assert _checksum(table) == small_commit_table["checksum"]
    # time travel to the retained snapshots still works and returns what it did before
    live = {s.snapshot_id for s in table.snapshots()}
    retained = [s for s in small_commit_table["snapshots"] if s in live]
    assert len(retained) == RETAIN_LAST - 1  # the newest RETAIN_LAST minus the compaction commit
    for snapshot_id in retained:
        assert _checksum(table, snapshot_id) == small_commit_table["as_of"][snapshot_id]
    expired = small_commit_table["snapshots"][0]
    assert expired not in live and table.snapshot_by_id(expired) is None

    # orphans: the 10-day-old one is gone, the 1-hour-old one (younger than 72 h) survives
    assert not old_orphan.exists()
    assert young_orphan.exists()
