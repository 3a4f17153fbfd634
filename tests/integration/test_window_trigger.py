"""The window sensor's trigger: serialisation round trip, firing on time and on queue size."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from warpspeed.embedded.seed import send_bodies
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.exceptions import WarpSpeedError
from warpspeed.sensors.sqs import ScoringWindowSensor
from warpspeed.triggers.sqs import ScoringWindowTrigger
from warpspeed.window.rule import floor_to_window


def first_event(trigger: ScoringWindowTrigger, timeout: float = 30) -> Any:
    async def run() -> Any:
        async for event in trigger.run():
            return event
        return None

    return asyncio.run(asyncio.wait_for(run(), timeout))


def test_serialize_round_trips() -> None:
    trigger = ScoringWindowTrigger(window_end="2026-11-20T21:30:00+00:00", queue_url="http://q",
                                   size_limit=500, aws_conn_id="c", poll_interval=7.5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "warpspeed.triggers.sqs.ScoringWindowTrigger"
    rebuilt = ScoringWindowTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_fires_on_time_without_a_queue() -> None:
    end = datetime.now(UTC) + timedelta(seconds=1)
    event = first_event(ScoringWindowTrigger(window_end=end.isoformat(), queue_url=None, size_limit=1,
                                             poll_interval=0.2))
    assert event.payload["reason"] == "time"
    assert datetime.fromisoformat(event.payload["closed_at"]) >= end


def test_fires_on_size_before_the_window_ends(sqs: LocalSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WINDOW_TEST", sqs.airflow_connection())
    send_bodies(sqs.client(), sqs.queue_url, [f"m{i}" for i in range(25)])
    end = datetime.now(UTC) + timedelta(minutes=30)
    event = first_event(ScoringWindowTrigger(window_end=end.isoformat(), queue_url=sqs.queue_url, size_limit=25,
                                             aws_conn_id="window_test", poll_interval=0.2))
    assert (event.payload["reason"], event.payload["depth"]) == ("size", 25)


def test_does_not_fire_below_the_size_limit(sqs: LocalSqs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WINDOW_TEST", sqs.airflow_connection())
    send_bodies(sqs.client(), sqs.queue_url, [f"m{i}" for i in range(3)])
    end = datetime.now(UTC) + timedelta(seconds=2)
    event = first_event(ScoringWindowTrigger(window_end=end.isoformat(), queue_url=sqs.queue_url, size_limit=4,
                                             aws_conn_id="window_test", poll_interval=0.2))
    assert event.payload["reason"] == "time"


def test_sensor_defers_with_the_trigger_and_validates_the_event() -> None:
    from airflow.exceptions import TaskDeferred

    sensor = ScoringWindowSensor(task_id="w", queue_url=None, size_limit=10, window_minutes=30, deferrable=True)
    sensor.settings = type("S", (), {"queue_url": None, "window_size_limit": 10, "window_minutes": 30,
                                     "aws_conn_id": "aws_default", "region_name": None})()
    # a scheduled run is dated on a window boundary; its window ends more than SHORT_WAIT_S (10 s) from now
    start = floor_to_window(datetime.now(UTC) + timedelta(minutes=1), 30)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"logical_date": start})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, ScoringWindowTrigger)
    assert datetime.fromisoformat(trigger.window_end) == start + timedelta(minutes=30)
    assert sensor.execute_complete({}, {"status": "closed", "reason": "size", "depth": 10}) == "size"  # type: ignore[arg-type]
    with pytest.raises(WarpSpeedError, match="without closing the window"):
        sensor.execute_complete({}, {"status": "error"})  # type: ignore[arg-type]
