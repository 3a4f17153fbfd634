"""### Warp Speed Iceberg maintenance.

Keeps the Iceberg tables registered in `config/maintenance.yaml` healthy: few, large data files,
a bounded snapshot history, compact manifests and no orphan files.

**When it runs**: daily at 03:00 UTC, *and* whenever a scoring window wrote `scores.account_scores`
(its asset `warpspeed_scores`; schedule on another table's `table_asset(...)` too to maintain it
after its writes). An asset-triggered run only maintains asset-driven tables (the scores
table) that took `trigger.min_new_commits` commits since their last maintenance and were not
maintained within `trigger.min_interval_minutes`; otherwise it plans nothing and ends quickly.

1. **plan** - reads each table's metadata with pyiceberg (snapshots, data files per partition,
   manifests) and decides what is due, logging the numbers that triggered each action. Writes
   one plan document per table under `<storage>/maintenance/runs/<run>/`.
2. **maintain** - one mapped task per table with work. Its actions run in order inside one
   Spark application: `rewrite_data_files` (bin-pack, only the due partitions), then
   `expire_snapshots`, then `rewrite_manifests`, then `remove_orphan_files` (on its own
   cadence, never for files younger than 72 h). One task per table plus `max_active_runs=1`
   mean two maintenance actions never hit one table at once. Before/after figures go to the
   task log and `warpspeed.maintenance_runs`.
3. **apply_s3_lifecycle** - applies `config/s3_lifecycle.yaml` (intake and batch
   manifests, maintenance documents, logs) to the storage bucket, refusing any rule over the
   warehouse, a registered table or an Iceberg table found in S3 under a rule's prefix; skipped
   on local storage.

Trigger with conf `{"policy_file": "/path/to/policy.yaml"}` to use another policy.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from warpspeed.assets.iceberg import DEFAULT_CATALOG, table_asset
from warpspeed.ledger.tables import SCORES_TABLE
from warpspeed.operators.lifecycle import ApplyS3LifecycleOperator
from warpspeed.operators.maintenance import IcebergMaintenanceOperator, PlanIcebergMaintenanceOperator

CONFIG = Path(__file__).parent / "config"
POLICY_FILE = str(CONFIG / "maintenance.yaml")
LIFECYCLE_FILE = str(CONFIG / "s3_lifecycle.yaml")
CLUSTER_PROFILES_FILE = str(CONFIG / "cluster_profiles.yaml")
SCORES_ASSET = table_asset(DEFAULT_CATALOG, SCORES_TABLE)

with DAG(
    dag_id="warpspeed_iceberg_maintenance",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * *", timezone="UTC"), assets=[SCORES_ASSET]
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["warpspeed", "iceberg", "maintenance"],
    params={"policy_file": Param(POLICY_FILE, type="string", description="maintenance policy YAML")},
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
) as dag:
    plan = PlanIcebergMaintenanceOperator(task_id="plan", policy_file="{{ params.policy_file }}")
    maintain = IcebergMaintenanceOperator.partial(
        task_id="maintain", execution_timeout=timedelta(hours=6), cluster_profiles_file=CLUSTER_PROFILES_FILE,
        map_index_template="{{ task.table }}",
    ).expand_kwargs(plan.output)
    lifecycle = ApplyS3LifecycleOperator(task_id="apply_s3_lifecycle", rules_file=LIFECYCLE_FILE,
                                         policy_file="{{ params.policy_file }}")
