"""### Warp Speed feature preprocessing

Keeps the Tier-2 table `features.account_features` fresh from raw sources, so scoring never
recomputes slow-changing data. Scheduled on the raw sources' **assets**: a producer that has
written a day's partition under `<storage>/raw/<source>/dt=YYYY-MM-DD/` marks the asset
updated (REST `POST /api/v2/assets/events`, or an outlet of its own DAG), optionally naming the
partitions in the event's extra: `{"partitions": ["2026-01-06"]}`.

- `warpspeed_features_activity` runs when `warpspeed_raw_engagement_events` **and**
  `warpspeed_raw_intent_signals` were both updated (the intent score needs both), or daily at
  06:00 UTC as a safety net; it refreshes `engagement_7d`, `engagement_30d`, `intent_score`.
- `warpspeed_features_firmographics` runs when `warpspeed_raw_firmographics` was updated; it
  refreshes `employee_count`, `annual_revenue`.

1. **plan** - changed partitions = those named by the triggering events plus those whose files
   differ from the watermark; skips the run when nothing changed.
2. **choose_backend** - AWS Glue 5 job when `[warpspeed] compute_backend = emr` (or
   `preprocessing_backend = glue`), local `spark-submit` otherwise.
3. **build_features_local** / **build_features_glue** - `spark_jobs/build_features.py` reads only
   the changed partitions, replaces those days in the daily tables and `MERGE`s the changed
   rows into the features table on (tenant_id, account_id).
4. **publish** - moves the watermark and emits `warpspeed_features` with extra
   `{snapshot_id, changed_partitions, ...}`.

Trigger with conf `{"full_refresh": true}` to reprocess every partition in the window.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param

from warpspeed.operators.preprocess import (
    BuildFeaturesOperator,
    ChoosePreprocessingBackendOperator,
    GlueBuildFeaturesOperator,
    PlanFeatureRefreshOperator,
    PublishFeaturesOperator,
)
from warpspeed.preprocessing.raw_sources import ENGAGEMENT_EVENTS, FIRMOGRAPHICS, INTENT_SIGNALS, features_asset
from warpspeed.window.rule import configured_retry_delay

CONFIG_FILE = str(Path(__file__).parent / "config" / "preprocessing.yaml")
FEATURES_ASSET = features_asset()
ENGAGEMENT_ASSET = ENGAGEMENT_EVENTS.asset()
INTENT_ASSET = INTENT_SIGNALS.asset()
FIRMOGRAPHICS_ASSET = FIRMOGRAPHICS.asset()


def preprocessing_dag(dag_id: str, schedule: Any, sources: list[str], tags: list[str]) -> DAG:
    """Return one preprocessing DAG: plan, choose backend, build (local or Glue), publish."""
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        doc_md=__doc__,
        tags=["warpspeed", "preprocessing", *tags],
        params={"full_refresh": Param(False, type="boolean", description="reprocess every partition")},
        default_args={"retries": 2, "retry_delay": configured_retry_delay(), "retry_exponential_backoff": True},
    ) as dag:
        plan = PlanFeatureRefreshOperator(task_id="plan", sources=sources, refresh_name=dag_id)
        choose = ChoosePreprocessingBackendOperator(
            task_id="choose_backend", local_task_id="build_features_local", glue_task_id="build_features_glue"
        )
        local = BuildFeaturesOperator(task_id="build_features_local", plan_uri=plan.output)
        glue = GlueBuildFeaturesOperator(
            task_id="build_features_glue", plan_uri=plan.output, config_file=CONFIG_FILE,
            deferrable=True,  # a Glue run takes minutes: wait in the triggerer, not in a worker slot
            execution_timeout=timedelta(hours=2),
        )
        publish = PublishFeaturesOperator(
            task_id="publish", plan_uri=plan.output, outlets=[FEATURES_ASSET],
            trigger_rule="none_failed_min_one_success",
        )
        plan >> choose >> [local, glue]
        [local, glue] >> publish
    return dag


activity_dag = preprocessing_dag(
    "warpspeed_features_activity",
    AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=ENGAGEMENT_ASSET & INTENT_ASSET
    ),
    [ENGAGEMENT_EVENTS.key, INTENT_SIGNALS.key],
    ["activity"],
)
firmographics_dag = preprocessing_dag(
    "warpspeed_features_firmographics", [FIRMOGRAPHICS_ASSET], [FIRMOGRAPHICS.key], ["firmographics"]
)
