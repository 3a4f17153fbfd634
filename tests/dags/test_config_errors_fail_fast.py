"""Issue 25: ``airflow dags test warpspeed_scoring`` without a queue fails at once, with the config message."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy

from warpspeed.embedded.airflow_db import airflow_bin
from warpspeed.embedded.stack import DAGS_TEST_ENV, airflow_env

pytestmark = pytest.mark.integration


def test_a_missing_queue_fails_its_task_without_retries(tmp_path: Path, airflow_db_url: str) -> None:
    env = os.environ | airflow_env(tmp_path / "home", None, db_url=airflow_db_url) | DAGS_TEST_ENV | {
        "AIRFLOW__WARPSPEED__WINDOW_MINUTES": "30", "AIRFLOW__WARPSPEED__TASK_RETRY_DELAY_SECONDS": "600"}
    for key in ("AIRFLOW__WARPSPEED__QUEUE_URL", "AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL"):
        env.pop(key, None)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True)  # the database is a migrated copy already
    # a window that has ended: the sensor closes at once, collect meets the missing setting
    proc = subprocess.run([airflow_bin(), "dags", "test", "warpspeed_scoring", "2026-01-01T00:00:00+00:00"],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "No SQS queue configured: set [warpspeed] queue_url and dead_letter_queue_url" in output

    engine = sqlalchemy.create_engine(airflow_db_url)
    try:
        with engine.connect() as conn:
            tries = dict(conn.execute(sqlalchemy.text(
                "SELECT task_id, max(try_number) FROM task_instance WHERE dag_id = 'warpspeed_scoring' "
                "AND state = 'failed' GROUP BY task_id")).fetchall())
    finally:
        engine.dispose()
    # with retries=2 and a 600 s first delay, a retried task would have waited 10 minutes: none did
    assert tries == {"collect_requests": 1, "publish": 1}, output[-4000:]
