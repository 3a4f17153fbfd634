"""Issue 25: a window that wrote ``crm.member_scores`` triggers that table's downstream DAG, and only it.

A real ``PublishBatchesOperator`` (through ``airflow dags test``) publishes a window whose one batch
wrote ``crm.member_scores``; two consumer DAGs, one per scores table, are serialized and unpaused.
Airflow queues a run of the member_scores consumer and none of the account_scores one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.airflow_db import airflow_bin
from warpspeed.embedded.stack import DAGS_TEST_ENV, airflow_env
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import ensure_tables
from warpspeed.window.manifests import PLAN_SCHEMA, BatchManifest, BatchRun, WindowLayout, window_id_for

pytestmark = pytest.mark.integration

WINDOW = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
DAGS = '''
from pathlib import Path

import pendulum
from airflow.sdk import DAG

from warpspeed.assets.iceberg import scored_tables, table_asset
from warpspeed.operators.publish import PublishBatchesOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
RUN_URIS = {run_uris!r}

with DAG("window_publisher", schedule=None, start_date=START, catchup=False):
    PublishBatchesOperator(task_id="publish", run_uris=RUN_URIS, outlets=[scored_tables()])

for table in ("crm.member_scores", "scores.account_scores"):
    with DAG(f"after_{{table.replace('.', '_')}}", schedule=[table_asset("warpspeed", table)], start_date=START,
             catchup=False):
        pass
'''


def _airflow(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run([airflow_bin(), *args], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, (args, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc.stdout + proc.stderr


def _window_with_one_batch(settings: WarpSpeedSettings, scores_table: str) -> str:
    """Write the documents of a window whose one batch wrote 2 x 40 rows to ``scores_table``; return its run URI."""
    storage, layout = settings.storage(), WindowLayout(settings.storage_prefix, window_id_for(WINDOW))
    members = tuple(ScoringRequest(f"r{i}", f"t{i}", "churn_risk", "v1", "crm", WINDOW.isoformat(), "normal", 40)
                    for i in range(2))
    manifest = BatchManifest("crm-1", layout.window_id, "crm", members, 80, "file:///models",
                             layout.summary_uri("crm-1"), scores_table=scores_table)
    storage.write_text(layout.batch_uri("crm-1"), manifest.to_json())
    storage.write_text(layout.plan_uri, json.dumps({"schema": PLAN_SCHEMA, "batches": [{"batch_id": "crm-1"}]}))
    storage.write_text(manifest.summary_uri, json.dumps({
        "status": "succeeded", "rows": 80, "duration_s": 1.0, "scores_snapshot_id": 7,
        "members": [{"tenant_id": m.tenant_id, "rows": 40, "status": "scored"} for m in members]}))
    started = WINDOW.isoformat()
    storage.write_text(layout.run_uri("crm-1"), BatchRun(
        "crm-1", layout.window_id, "crm", layout.batch_uri("crm-1"), manifest.summary_uri, "local", "local", False,
        "SUCCEEDED", started, started, 1.0).to_json())
    return layout.run_uri("crm-1")


def test_only_the_written_tables_downstream_dag_is_queued(
    tmp_path: Path, airflow_db_url: str, rest_catalog_for: Callable[[Path], object]
) -> None:
    home = tmp_path / "home"
    rest_catalog_for(home)
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
    ensure_tables(settings.catalog.load())
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "scored_tables.py").write_text(DAGS.format(run_uris=[_window_with_one_batch(settings,
                                                                                         "crm.member_scores")]))
    # consumers must be known and unpaused: Airflow skips paused ones when it queues runs
    env = os.environ | airflow_env(home, None, dags, db_url=airflow_db_url) | DAGS_TEST_ENV | {
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False"}
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True)  # the database is a migrated copy already
    _airflow("dags", "reserialize", env=env)
    _airflow("dags", "test", "window_publisher", WINDOW.isoformat(), env=env)

    engine = sqlalchemy.create_engine(airflow_db_url)
    try:
        with engine.connect() as conn:
            queued = conn.execute(sqlalchemy.text(
                "SELECT q.target_dag_id, a.uri FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id"
            )).fetchall()
            events = conn.execute(sqlalchemy.text(
                "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id")).fetchall()
    finally:
        engine.dispose()
    assert sorted(map(tuple, queued)) == [("after_crm_member_scores", "iceberg://warpspeed/crm/member_scores")]
    ((name, extra),) = events
    extra = extra if isinstance(extra, dict) else json.loads(extra)
    assert name == "iceberg://warpspeed/crm/member_scores"
    assert extra == {"window_id": "20261120T2100Z", "batches": 1, "rows": 80, "snapshot_id": 7}
