"""Issue 12: one window rule for every run, a schedule that follows the config, waits that defer."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.exceptions import TaskDeferred

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.operators.maintenance import IcebergMaintenanceOperator
from warpspeed.operators.preprocess import GlueBuildFeaturesOperator
from warpspeed.operators.score import ScoreBatchesOperator
from warpspeed.sensors.sqs import ScoringWindowSensor
from warpspeed.window.rule import floor_to_window, window_cron, window_for

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_boundary_dates_open_their_window_other_dates_take_the_last_closed_one() -> None:
    boundary = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    assert (window_for(boundary, 30).start, window_for(boundary, 30).end) == (
        boundary, boundary + timedelta(minutes=30)
    )
    inside = boundary + timedelta(minutes=7, microseconds=5)
    assert window_for(inside, 30).end == boundary
    assert window_for(inside, 2).start == datetime(2026, 11, 20, 21, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("minutes", "cron"),
    [(1, "*/1 * * * *"), (2, "*/2 * * * *"), (30, "*/30 * * * *"), (120, "0 */2 * * *"), (1440, "0 0 * * *")],
)
def test_window_cron_fires_on_the_window_boundaries(minutes: int, cron: str) -> None:
    assert window_cron(minutes) == cron


def test_window_cron_refuses_lengths_that_cannot_align() -> None:
    with pytest.raises(WarpSpeedConfigError, match="window_minutes=45"):
        window_cron(45)


def _load_dag(name: str, attr: str = "dag") -> Any:
    spec = importlib.util.spec_from_file_location(f"_dag_{name}", DAGS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return getattr(module, attr)


def test_scoring_schedule_follows_window_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__WARPSPEED__WINDOW_MINUTES", "2")
    dag = _load_dag("warpspeed_scoring")
    assert dag.timetable.expression == "*/2 * * * *"
    assert dag.get_task("score_batches").map_index_template == "{{ task.workload }}"


def test_task_retry_delay_follows_the_config_and_defaults_to_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _load_dag("warpspeed_scoring").get_task("score_batches").retry_delay == timedelta(minutes=1)
    monkeypatch.setenv("AIRFLOW__WARPSPEED__TASK_RETRY_DELAY_SECONDS", "10")
    assert _load_dag("warpspeed_scoring").get_task("score_batches").retry_delay == timedelta(seconds=10)
    assert _load_dag("warpspeed_preprocessing", "activity_dag").get_task("plan").retry_delay == timedelta(seconds=10)
    monkeypatch.setenv("AIRFLOW__WARPSPEED__TASK_RETRY_DELAY_SECONDS", "soon")
    with pytest.raises(WarpSpeedConfigError, match=r"task_retry_delay_seconds='soon' must be a whole number"):
        _load_dag("warpspeed_scoring")


def test_maintenance_mapped_tasks_are_named_by_table() -> None:
    assert _load_dag("warpspeed_iceberg_maintenance").get_task("maintain").map_index_template == "{{ task.table }}"


def test_waits_defer_by_default_whatever_default_deferrable_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert ScoringWindowSensor(task_id="w").deferrable is True
    assert ScoreBatchesOperator(task_id="s", workload="w", batch_manifest_uris=[], clusters={}).deferrable is True
    assert GlueBuildFeaturesOperator(task_id="g", plan_uri="x", config_file="c").deferrable is True
    assert IcebergMaintenanceOperator(task_id="m", table="t", plan_uri="p").deferrable is True
    assert IcebergMaintenanceOperator(task_id="m2", table="t", plan_uri="p", deferrable=False).deferrable is False
    assert ScoringWindowSensor(task_id="w2", deferrable=False).deferrable is False
    assert GlueBuildFeaturesOperator(task_id="g2", plan_uri="x", config_file="c", deferrable=False).deferrable is False


def test_a_run_dated_now_closes_at_once_and_a_boundary_run_defers() -> None:
    sensor = ScoringWindowSensor(task_id="w", queue_url=None, window_minutes=30)
    now = datetime.now(UTC)
    if now == floor_to_window(now, 30):  # pragma: no cover - a boundary to the microsecond
        now += timedelta(microseconds=1)
    assert sensor.execute({"logical_date": now}) is None  # type: ignore[arg-type]
    with pytest.raises(TaskDeferred):  # a boundary run whose window ends over SHORT_WAIT_S (10 s) from now
        sensor.execute({"logical_date": floor_to_window(now + timedelta(minutes=1), 30)})  # type: ignore[arg-type]
