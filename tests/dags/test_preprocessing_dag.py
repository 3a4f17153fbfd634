"""The preprocessing DAGs: structure, asset schedules, and scheduler-level asset queueing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from warpspeed.embedded.stack import airflow_env
from warpspeed.preprocessing.raw_sources import (
    ENGAGEMENT_EVENTS,
    FEATURES_ASSET_NAME,
    FEATURES_ASSET_URI,
    FIRMOGRAPHICS,
    INTENT_SIGNALS,
)

ACTIVITY, FIRMO = "warpspeed_features_activity", "warpspeed_features_firmographics"


def _asset_names(condition: Any) -> set[str]:
    return {asset.name for asset in condition.objects}


@pytest.mark.unit
def test_dags_parse_with_tasks_in_order(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    for dag_id in (ACTIVITY, FIRMO):
        dag = dagbag.dags[dag_id]
        assert dag.max_active_runs == 1 and dag.doc_md
        # plan feeds its URI to every later task; choose_backend gates the two builds
        assert dag.task_dict["plan"].downstream_task_ids == {"choose_backend", "build_features_local",
                                                              "build_features_glue", "publish"}
        assert dag.task_dict["choose_backend"].downstream_task_ids == {"build_features_local", "build_features_glue"}
        publish = dag.task_dict["publish"]
        assert publish.upstream_task_ids == {"plan", "build_features_local", "build_features_glue"}
        assert publish.trigger_rule == "none_failed_min_one_success"
        assert [(o.name, o.uri) for o in publish.outlets] == [(FEATURES_ASSET_NAME, FEATURES_ASSET_URI)]
        glue = dag.task_dict["build_features_glue"]
        assert glue.deferrable is True and glue.aws_hook_class.__name__ == "ConcurrencyAwareGlueJobHook"


@pytest.mark.unit
def test_activity_needs_both_sources_firmographics_its_own(dagbag: Any) -> None:
    from airflow.sdk import AssetAll

    activity = dagbag.dags[ACTIVITY].timetable
    condition = activity.asset_condition
    assert isinstance(condition, AssetAll)
    assert _asset_names(condition) == {ENGAGEMENT_EVENTS.asset_name, INTENT_SIGNALS.asset_name}
    firmo = dagbag.dags[FIRMO].timetable.asset_condition
    assert _asset_names(firmo) == {FIRMOGRAPHICS.asset_name}


SCHEDULER_CHECK = """
import json, sys
from airflow.cli import cli_parser
from sqlalchemy import select
from airflow.assets.manager import AssetManager
from airflow.models.asset import AssetDagRunQueue, AssetModel
from airflow.models.dag import DagModel
from airflow.utils.session import create_session

def state(session):
    queued = sorted({(q.target_dag_id, q.asset.name) for q in session.scalars(select(AssetDagRunQueue))})
    _query, ready = DagModel.dags_needing_dagruns(session)
    return {"queued": queued, "ready": sorted(ready)}

args = cli_parser.get_parser().parse_args(["dags", "reserialize"])  # `airflow dags reserialize`, in this process
args.func(args)
out = {}
with create_session() as session:
    for step, name in enumerate(sys.argv[1:]):
        asset = session.scalar(select(AssetModel).where(AssetModel.name == name))
        AssetManager.register_asset_change(asset=asset, extra={"partitions": ["2026-01-06"]}, session=session)
        session.flush()
        out[name] = state(session)
print("RESULT " + json.dumps(out))
"""


def test_raw_asset_events_queue_the_right_dags(tmp_path: Path, airflow_db_url: str) -> None:
    """Register the bundle in a copy of the migrated metadata DB, post raw asset events, ask the scheduler's model."""
    env = airflow_env(tmp_path / "home", None, db_url=airflow_db_url) | {
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"
    }
    proc = subprocess.run(
        [sys.executable, "-c", SCHEDULER_CHECK, ENGAGEMENT_EVENTS.asset_name, INTENT_SIGNALS.asset_name,
         FIRMOGRAPHICS.asset_name],
        env=os.environ | env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))

    after_engagement = result[ENGAGEMENT_EVENTS.asset_name]
    # queued for the activity DAG, but the AND condition waits for intent signals
    assert after_engagement["queued"] == [[ACTIVITY, ENGAGEMENT_EVENTS.asset_name]]
    assert after_engagement["ready"] == []
    after_intent = result[INTENT_SIGNALS.asset_name]
    assert after_intent["queued"] == [[ACTIVITY, ENGAGEMENT_EVENTS.asset_name], [ACTIVITY, INTENT_SIGNALS.asset_name]]
    assert after_intent["ready"] == [ACTIVITY]
    after_firmo = result[FIRMOGRAPHICS.asset_name]
    assert [FIRMO, FIRMOGRAPHICS.asset_name] in after_firmo["queued"]
    assert after_firmo["ready"] == [ACTIVITY, FIRMO]
    # nothing else listens to raw sources (the scoring and maintenance DAGs are not queued)
    assert {dag for dag, _ in after_firmo["queued"]} == {ACTIVITY, FIRMO}
