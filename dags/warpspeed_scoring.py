"""### Warp Speed scoring window

Every `[warpspeed] window_minutes` (default 30, UTC, read when the file is parsed) a window
opens. Requests that arrive on the SQS queue during the window are scored together:

1. **wait_for_window** - deferrable: closes at the window end, or earlier once the queue holds
   `[warpspeed] window_size_limit` messages.
2. **collect_requests** - drains the queue; valid requests go to the window's intake manifest
   *before* their messages are deleted; invalid ones go to the dead-letter queue with reasons.
3. **plan_batches** - groups requests by workload, drops superseded ones, packs tenants into
   balanced batches and writes one manifest per batch.
4. **ensure_clusters** - one cluster per workload with work (reused when healthy).
5. **score_batches** - one mapped task per workload (named by its workload); each batch is one Spark run that
   overwrites exactly its (tenant, model) slices of `scores.account_scores`.
6. **publish** - one row per batch in `warpspeed.batch_runs`; emits one asset event per scores
   table the window wrote (through the `warpspeed_scored_tables` alias: a DAG scheduled on
   `table_asset("warpspeed", "crm.member_scores")` runs only when that table was written) and the
   window's metrics (`warpspeed.window.*`). It runs whatever happened upstream (`all_done`): one
   workload's failure never hides the others' finished batches, and publish then fails so the run
   ends failed.

**Deadline**: a window not published `[warpspeed] window_deadline_minutes` after its end
(default: one window length) fires a Deadline Alert: the triggerer logs it, counts
`warpspeed.window.deadline_missed` and calls `[warpspeed] deadline_notifier`. `0` turns it off
(needed for `airflow dags test` on Airflow 3.3.2, apache/airflow#73428).

A configuration error (no queue, a bad setting) fails its task at once, without retries.

A run dated on a window boundary (every scheduled run) scores the window it opens; a run dated
inside a window (a manual trigger, `airflow dags test warpspeed_scoring` without a date) scores
the window that ended last, so it finishes at once.

Settings (queue URLs, storage prefix, catalog, compute backend) come from the `[warpspeed]`
config section; workloads and their planning limits from `config/workloads.yaml`.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, CronTriggerTimetable

from warpspeed.assets.iceberg import scored_tables
from warpspeed.operators.clusters import EnsureClustersOperator
from warpspeed.operators.collect import CollectRequestsOperator
from warpspeed.operators.plan import PlanBatchesOperator
from warpspeed.operators.publish import PublishBatchesOperator
from warpspeed.operators.score import ScoreBatchesOperator
from warpspeed.sensors.sqs import ScoringWindowSensor
from warpspeed.window.deadline import window_deadline
from warpspeed.window.rule import configured_retry_delay, configured_window_minutes, window_cron

WORKLOADS_FILE = str(Path(__file__).parent / "config" / "workloads.yaml")
WINDOW_MINUTES = configured_window_minutes()

with DAG(
    dag_id="warpspeed_scoring",
    schedule=CronTriggerTimetable(window_cron(WINDOW_MINUTES), timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["warpspeed", "scoring"],
    default_args={"retries": 2, "retry_delay": configured_retry_delay(), "retry_exponential_backoff": True},
    deadline=window_deadline(WINDOW_MINUTES),
) as dag:
    window = ScoringWindowSensor(task_id="wait_for_window")
    collect = CollectRequestsOperator(task_id="collect_requests", workloads_file=WORKLOADS_FILE)
    plan = PlanBatchesOperator(
        task_id="plan_batches", intake_manifest_uri=collect.output, workloads_file=WORKLOADS_FILE
    )
    clusters = EnsureClustersOperator(
        task_id="ensure_clusters", workload_batches=plan.output, workloads_file=WORKLOADS_FILE
    )
    score = ScoreBatchesOperator.partial(
        task_id="score_batches",
        clusters=clusters.output,
        workloads_file=WORKLOADS_FILE,
        map_index_template="{{ task.workload }}",
    ).expand_kwargs(plan.output)
    publish = PublishBatchesOperator(
        task_id="publish", run_uris=score.output, outlets=[scored_tables()], trigger_rule="all_done",
        window_sensor_task_id="wait_for_window",
    )
    window >> collect
