"""``airflow dags test warpspeed_scoring`` of the demo's window on the embedded servers, twice: exact and idempotent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.demo import run_window
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import airflow_env
from warpspeed.ledger.tables import SCORES_TABLE

if TYPE_CHECKING:
    from tests.dags.conftest import AirflowCommands

pytestmark = pytest.mark.integration


def test_two_windows_score_every_pair_exactly_once(
    tmp_path: Path, rest_catalog_for: Callable[[Path], object], sqs: LocalSqs, airflow_db_url: str,
    airflow_commands: Callable[[dict[str, str]], AirflowCommands],
) -> None:
    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path / "home")})
    rest_catalog_for(settings.home)
    env = airflow_env(settings.home, sqs, db_url=airflow_db_url)  # a copy of the migrated template
    commands = airflow_commands(env)

    def run_dag(dag_id: str, logical_date: str, _env: dict[str, str], log_path: Path) -> int:
        return commands.run(["dags", "test", dag_id, logical_date], log_path)[0]

    first = run_window(settings, sqs, env, tenants=6, requests=16, invalid=3, migrate=False, run_dag=run_dag)
    assert first["requests_in_manifest"] == 16
    assert first["dead_lettered"] == 3
    assert first["pairs_exact"] == first["pairs"] > 0
    assert first["ledger_rows"] == first["batches"] > 0
    assert first["rows_scored"] > 0

    # A second run of the same window (new requests for the same pairs, as `make demo` twice
    # does) rescores those pairs without duplicating a single account.
    second = run_window(settings, sqs, env, tenants=6, requests=16, invalid=0, migrate=False, run_dag=run_dag)
    assert second["window_id"] == first["window_id"]
    assert second["pairs_exact"] == second["pairs"]
    scores = settings.catalog.load().load_table(SCORES_TABLE).scan(
        selected_fields=("tenant_id", "model", "account_id")
    ).to_arrow().to_pylist()
    keys = [(r["tenant_id"], r["model"], r["account_id"]) for r in scores]
    assert len(keys) == len(set(keys)) > 0
