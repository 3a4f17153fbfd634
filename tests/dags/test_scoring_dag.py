"""``airflow dags test warpspeed_scoring`` of the demo's window on the embedded servers: exact, idempotent, no ERROR.

One window on S3 storage, run twice (the second run rescores its pairs), and one on ``file://``
storage: each costs a state folder, its catalog, its warm engine and its DAG runs, so the S3
window's checks (every table and document on the S3 server, its requests counted) are made on
the first run of the two-window test rather than on a window of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from warpspeed.config.s3 import embedded_bucket
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.demo import run_window
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import airflow_env
from warpspeed.ledger.tables import S3_REQUESTS_TABLE, SCORES_TABLE

if TYPE_CHECKING:
    from tests.conftest import SessionS3
    from tests.dags.conftest import AirflowCommands

pytestmark = pytest.mark.integration


ERROR_LINE = re.compile(r"\[error\s*\]|\bERROR\b|level=error")


def error_lines(home: Path, window_id: str) -> list[str]:
    """Return the ERROR lines of the demo's ``airflow dags test`` log of a window (task logs included)."""
    log = home / "logs" / f"dags_test_{window_id}.log"
    return [line for line in log.read_text(encoding="utf-8").splitlines() if ERROR_LINE.search(line)]


def test_two_windows_score_every_pair_exactly_once_with_everything_on_the_s3_server(
    tmp_path: Path, rest_catalog_for: Callable[[Path], object], s3: SessionS3, sqs: LocalSqs, airflow_db_url: str,
    airflow_commands: Callable[[dict[str, str]], AirflowCommands],
) -> None:
    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path / "home")})
    rest_catalog_for(settings.home)  # the state folder's bucket on the session's S3 server, behind its counting proxy
    env = airflow_env(settings.home, sqs, db_url=airflow_db_url)  # a copy of the migrated template
    commands = airflow_commands(env)

    def run_dag(dag_id: str, logical_date: str, _env: dict[str, str], log_path: Path) -> int:
        return commands.run(["dags", "test", dag_id, logical_date], log_path)[0]

    first = run_window(settings, sqs, env, tenants=6, requests=16, invalid=3, migrate=False, run_dag=run_dag)
    # issue 25: a local window alarms nobody (the EMR links and the mapped XCom read logged errors)
    assert error_lines(settings.home, first["window_id"]) == []
    assert first["requests_in_manifest"] == 16
    assert first["dead_lettered"] == 3
    assert first["pairs_exact"] == first["pairs"] > 0
    assert first["ledger_rows"] == first["batches"] > 0
    assert first["rows_scored"] > 0

    # every table and document of the window is on the S3 server: the warehouse and the documents
    # are S3Proxy's files, nothing Iceberg in the state folder
    home = settings.home.resolve()
    bucket = s3.server.basedir / embedded_bucket(home)
    assert settings.storage_prefix.startswith("s3://")
    assert list((bucket / "warehouse").rglob("*.metadata.json"))
    assert list((bucket / "storage" / "windows" / first["window_id"]).glob("*.json"))
    assert list(home.rglob("*.metadata.json")) == []
    # and the window's S3 requests were counted by component and recorded
    rows = settings.catalog.load().load_table(S3_REQUESTS_TABLE).scan().to_arrow().to_pylist()
    components = {r["component"] for r in rows if r["window_id"] == first["window_id"]}
    assert {"intake", "plan", "score", "publish"} <= components

    # A second run of the same window (new requests for the same pairs, as `make demo` twice
    # does) rescores those pairs without duplicating a single account.
    # (the first's window: a clock read now may have crossed a window's end since, as in one CI run)
    second = run_window(settings, sqs, env, tenants=6, requests=16, invalid=0, migrate=False, run_dag=run_dag,
                        window_start=datetime.fromisoformat(first["window_start"]))
    assert second["window_id"] == first["window_id"]
    assert second["pairs_exact"] == second["pairs"]
    scores = settings.catalog.load().load_table(SCORES_TABLE).scan(
        selected_fields=("tenant_id", "model", "account_id")
    ).to_arrow().to_pylist()
    keys = [(r["tenant_id"], r["model"], r["account_id"]) for r in scores]
    assert len(keys) == len(set(keys)) > 0


def test_a_window_on_file_storage_scores_every_pair_exactly_once(
    tmp_path: Path, rest_catalog_for: Callable[..., object], sqs: LocalSqs, airflow_db_url: str,
    airflow_commands: Callable[[dict[str, str]], AirflowCommands],
) -> None:
    """``storage_prefix = file://…`` stays a supported setting: no S3 server, documents and warehouse in folders."""
    home = tmp_path / "file-home"
    prefix = (home / "storage").as_uri()
    settings = WarpSpeedSettings.from_mapping({"home": str(home), "storage_prefix": prefix})
    rest_catalog_for(home, s3_storage=False)
    env = airflow_env(home, sqs, db_url=airflow_db_url) | {"AIRFLOW__WARPSPEED__STORAGE_PREFIX": prefix}
    commands = airflow_commands(env)

    def run_dag(dag_id: str, logical_date: str, _env: dict[str, str], log_path: Path) -> int:
        return commands.run(["dags", "test", dag_id, logical_date], log_path)[0]

    summary = run_window(settings, sqs, env, tenants=3, requests=6, invalid=1, migrate=False, run_dag=run_dag)
    assert summary["pairs_exact"] == summary["pairs"] > 0
    assert summary["ledger_rows"] == summary["batches"] > 0
    assert list((home / "storage" / "windows" / summary["window_id"]).glob("*.json"))
    assert list((home / "warehouse").rglob("*.metadata.json"))
    assert not (home / "s3").exists()
