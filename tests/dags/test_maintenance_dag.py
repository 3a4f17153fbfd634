"""The maintenance DAG's schedule and shape, from the bundle parsed once (``tests/dags/conftest.py``)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dag(dagbag: Any):  # type: ignore[no-untyped-def]
    assert not dagbag.import_errors, dagbag.import_errors
    return dagbag.dags["warpspeed_iceberg_maintenance"]


def test_runs_daily_and_after_scores_asset_updates(dag) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    timetable = dag.timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert isinstance(timetable.timetable, CronTriggerTimetable)
    assert "iceberg://warpspeed/scores/account_scores" in str(timetable.asset_condition)
    assert dag.max_active_runs == 1 and dag.doc_md


def test_one_mapped_task_per_table_after_planning(dag) -> None:  # type: ignore[no-untyped-def]
    assert set(dag.task_dict) == {"plan", "maintain", "apply_s3_lifecycle"}
    assert dag.task_dict["maintain"].upstream_task_ids == {"plan"}
    assert dag.params["policy_file"].endswith("dags/config/maintenance.yaml")
