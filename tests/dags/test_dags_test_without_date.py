"""Issue 12: ``airflow dags test warpspeed_scoring`` without a date scores the window that just ended."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warpspeed.embedded.airflow_db import airflow_bin
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import DAGS_TEST_ENV, airflow_env
from warpspeed.storage.documents import storage_for
from warpspeed.window.manifests import WindowLayout, window_id_for
from warpspeed.window.rule import floor_to_window


@pytest.mark.integration
def test_dags_test_without_a_date_finishes_with_the_last_closed_window(
    tmp_path: Path, sqs: LocalSqs, airflow_db_url: str
) -> None:
    home = tmp_path / "home"
    # the database is a copy of the migrated template: the CLI run is the only `airflow` command
    env = os.environ | airflow_env(home, sqs, db_url=airflow_db_url) | DAGS_TEST_ENV | {
        "AIRFLOW__WARPSPEED__WINDOW_MINUTES": "30",
        "AIRFLOW__WARPSPEED__STORAGE_PREFIX": (home / "storage").as_uri()}  # no S3 server: the window is empty
    before = datetime.now(UTC)
    # The old rule opened [now, now + 30 min) and blocked in the sensor; the guard only stops a hang.
    proc = subprocess.run([airflow_bin(), "dags", "test", "warpspeed_scoring"], env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    after = datetime.now(UTC)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    candidates = {window_id_for(floor_to_window(t, 30) - timedelta(minutes=30)) for t in (before, after)}
    storage = storage_for((home / "storage").as_uri())
    scored = [w for w in candidates if storage.exists(WindowLayout((home / "storage").as_uri(), w).intake_uri)]
    assert len(scored) == 1, (candidates, proc.stdout[-2000:])
