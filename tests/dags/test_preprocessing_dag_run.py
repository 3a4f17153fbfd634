"""``airflow dags test`` of both preprocessing DAGs on the embedded stack, then an incremental rerun.

The rerun adds one raw day holding one tenant's activity; the Iceberg snapshot summaries show
that only that day was reprocessed (one daily partition) and only that tenant's feature
partition was rewritten by the MERGE.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy

from tests.loopback import LineageSink, lineage_sink
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.raw_data import RawDataMix, write_day, write_days
from warpspeed.embedded.stack import airflow_env
from warpspeed.ledger.tables import FEATURES_TABLE
from warpspeed.lineage.datasets import DatasetName, catalog_namespace, storage_dataset
from warpspeed.lineage.spark import JAR_GLOB, listener_jar
from warpspeed.preprocessing.raw_sources import ENGAGEMENT_EVENTS, FEATURES_ASSET_NAME, INTENT_SIGNALS

if TYPE_CHECKING:
    from tests.dags.conftest import AirflowCommands

pytestmark = pytest.mark.integration

ACTIVITY, FIRMO = "warpspeed_features_activity", "warpspeed_features_firmographics"
MIX = RawDataMix(tenants=3, accounts_per_tenant=30)
TENANTS = ["tenant-000", "tenant-001", "tenant-002"]


def _run(commands: AirflowCommands, dag_id: str, logical_date: str, logs: Path) -> str:
    code, log = commands.run(["dags", "test", dag_id, logical_date], logs / f"{dag_id}-{logical_date[:10]}.log")
    assert code == 0, log[-6000:]
    return log


def _run_states(env: dict[str, str], dag_id: str) -> list[str]:
    """Return the states of ``dag_id``'s runs in the metadata database, oldest first."""
    engine = sqlalchemy.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.text("SELECT state FROM dag_run WHERE dag_id = :d ORDER BY logical_date"),
                                {"d": dag_id}).fetchall()
    finally:
        engine.dispose()
    return [r[0] for r in rows]


def _feature_events(env: dict[str, str]) -> list[dict[str, Any]]:
    engine = sqlalchemy.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = :name "
                    "ORDER BY e.id"
                ),
                {"name": FEATURES_ASSET_NAME},
            ).fetchall()
    finally:
        engine.dispose()
    return [r[0] if isinstance(r[0], dict) else json.loads(r[0]) for r in rows]


def _latest(table: Any) -> Any:
    return table.current_snapshot()


def _rows_by_tenant(table: Any) -> dict[str, list[tuple[Any, ...]]]:
    rows = table.scan().to_arrow().to_pylist()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for r in sorted(rows, key=lambda r: r["account_id"]):
        out.setdefault(r["tenant_id"], []).append(tuple(r[k] for k in sorted(r)))
    return out


def check_lineage(sink: LineageSink, settings: WarpSpeedSettings, changed_rows: int) -> None:
    """Issue 25: the build task reports the features table it wrote; the Spark listener names it alike.

    The job ran on the warm engine, one Spark application for every task, so its events have no
    task parent (tests/integration/test_maintenance_dag_run.py checks the parent of a spark-submit
    run): they join the task's through the table, the listener's catalog symlink being the task's
    dataset.
    """
    task = f"{ACTIVITY}.build_features_local"
    events = sink.snapshot()
    (build,) = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == task]
    table = {(o["namespace"], o["name"]): o for o in build["outputs"]}[
        (catalog_namespace(settings.catalog), FEATURES_TABLE)]
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == changed_rows
    raw = {storage_dataset(s.location(settings.storage_prefix)) for s in (ENGAGEMENT_EVENTS, INTENT_SIGNALS)}
    assert raw <= {DatasetName(i["namespace"], i["name"]) for i in build["inputs"]}
    written = {(s["namespace"], s["name"]) for e in events for o in e.get("outputs", [])
               for s in (o.get("facets") or {}).get("symlinks", {}).get("identifiers", [])}
    assert (catalog_namespace(settings.catalog), FEATURES_TABLE) in written, written


@pytest.fixture
def sink() -> Iterator[LineageSink]:
    """Receive the DAG runs' OpenLineage events (the tasks' and their Spark applications')."""
    with lineage_sink() as running:
        yield running


def test_preprocessing_dags_refresh_features_and_rerun_incrementally(
    tmp_path: Path, airflow_db_url: str, rest_catalog_for: Callable[[Path], object],
    airflow_commands: Callable[[dict[str, str]], AirflowCommands], sink: LineageSink,
) -> None:
    home = tmp_path / "home"
    rest_catalog_for(home)
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
    assert listener_jar(settings.jars_dir), f"no {JAR_GLOB} in {settings.jars_dir}: run make setup"
    write_days(settings.storage_prefix, date(2026, 1, 1), 5, MIX, settings.storage())
    env = airflow_env(home, None, db_url=airflow_db_url) | {  # a copy of the migrated template
        "AIRFLOW__OPENLINEAGE__TRANSPORT": sink.transport(), "AIRFLOW__OPENLINEAGE__NAMESPACE": "warpspeed-test"}
    commands = airflow_commands(env)
    logs = tmp_path / "logs"

    # 1. first refresh of each DAG: every account gets its features
    _run(commands, ACTIVITY, "2026-01-06T06:00:00+00:00", logs)
    _run(commands, FIRMO, "2026-01-06T06:00:00+00:00", logs)
    catalog = settings.catalog.load()
    features = catalog.load_table(FEATURES_TABLE)
    rows = features.scan().to_arrow().to_pylist()
    assert len(rows) == MIX.tenants * MIX.accounts_per_tenant
    assert {r["tenant_id"] for r in rows} == set(TENANTS)
    assert all(r["engagement_30d"] is not None and r["engagement_30d"] >= r["engagement_7d"] >= 0 for r in rows)
    assert all(0 <= r["intent_score"] <= 100 for r in rows)
    assert all(r["employee_count"] is not None and r["annual_revenue"] is not None for r in rows)
    events = _feature_events(env)
    check_lineage(sink, settings, events[0]["changed_rows"])
    assert len(events) == 2
    assert events[0]["changed_partitions"] == [f"{s}/dt=2026-01-0{d}" for s in ("engagement_events", "intent_signals")
                                               for d in range(1, 6)]
    assert events[1]["snapshot_id"] == features.current_snapshot().snapshot_id
    assert events[1]["changed_partitions"][0] == "firmographics/dt=2026-01-01"
    before = _rows_by_tenant(features)
    daily_before = {t: catalog.load_table(f"features.{t}_daily").current_snapshot().snapshot_id
                    for t in ("engagement", "intent")}

    # 2. a new day arrives, with activity of tenant-001 only
    write_day(settings.storage_prefix, date(2026, 1, 6), MIX, sources=(ENGAGEMENT_EVENTS, INTENT_SIGNALS),
              tenants=["tenant-001"], storage=settings.storage())
    _run(commands, ACTIVITY, "2026-01-07T06:00:00+00:00", logs)

    features = catalog.load_table(FEATURES_TABLE)
    merge = features.current_snapshot()
    summary = merge.summary
    assert summary.operation.value == "overwrite"  # copy-on-write MERGE
    assert summary["changed-partition-count"] == "1"  # only tenant_id=tenant-001
    assert summary["deleted-data-files"] == "1" and summary["added-data-files"] == "1"
    for name in ("engagement", "intent"):
        daily = catalog.load_table(f"features.{name}_daily")
        snap = daily.current_snapshot()
        assert snap.parent_snapshot_id == daily_before[name]  # exactly one new commit
        assert snap.summary["changed-partition-count"] == "1"  # only dt=2026-01-06 was written
        assert snap.summary["added-data-files"] == "1"
        assert "deleted-data-files" not in snap.summary.additional_properties  # no earlier day rewritten
    after = _rows_by_tenant(features)
    assert after["tenant-000"] == before["tenant-000"] and after["tenant-002"] == before["tenant-002"]
    assert after["tenant-001"] != before["tenant-001"]
    event = _feature_events(env)[-1]
    assert event["changed_partitions"] == ["engagement_events/dt=2026-01-06", "intent_signals/dt=2026-01-06"]
    assert event["feature_partitions"] == ["tenant_id=tenant-001"]
    assert event["snapshot_id"] == merge.snapshot_id and event["as_of"] == "2026-01-06"

    # 3. firmographics did not change: the run plans nothing, skips, and emits no event
    log = _run(commands, FIRMO, "2026-01-07T06:00:00+00:00", logs)
    assert "changed since the last refresh" in log
    assert catalog.load_table(FEATURES_TABLE).current_snapshot().snapshot_id == merge.snapshot_id
    assert len(_feature_events(env)) == 3
    # every run finished as a success, not just without failing
    assert _run_states(env, ACTIVITY) == _run_states(env, FIRMO) == ["success", "success"]
