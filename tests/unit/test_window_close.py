"""Issue 23: one window close rule (time or queue depth), applied alike by the sensor and the trigger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from warpspeed.hooks.sqs import SqsIntakeHook
from warpspeed.sensors.sqs import ScoringWindowSensor
from warpspeed.triggers.sqs import ScoringWindowTrigger
from warpspeed.window.close import check_close, close_reason
from warpspeed.window.rule import floor_to_window

END = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
BEFORE = END - timedelta(minutes=5)


def test_the_end_closes_the_window_whatever_the_queue_says() -> None:
    for depth in (None, 0, 10_000, ConnectionError("queue down")):
        assert close_reason(END, END, depth, 100) == "time"
        assert close_reason(END + timedelta(seconds=1), END, depth, 100) == "time"


def test_before_the_end_only_a_deep_enough_queue_closes_it() -> None:
    assert close_reason(BEFORE, END, 100, 100) == "size"
    assert close_reason(BEFORE, END, 99, 100) is None
    assert close_reason(BEFORE, END, None, 100) is None
    assert close_reason(BEFORE, END, ConnectionError("queue down"), 100) is None


def test_a_failed_depth_read_is_recorded_not_raised_and_no_read_happens_after_the_end() -> None:
    reads: list[datetime] = []

    def broken() -> int:
        reads.append(BEFORE)
        raise ConnectionError("queue down")

    check = check_close(BEFORE, END, 100, broken)
    assert (check.closed, check.depth, str(check.error)) == (False, None, "queue down")
    after = check_close(END, END, 100, broken)
    assert (after.reason, after.error) == ("time", None)
    assert len(reads) == 1
    deep = check_close(BEFORE, END, 100, lambda: 150)
    assert (deep.reason, deep.depth) == ("size", 150)


def _sensor() -> ScoringWindowSensor:
    sensor = ScoringWindowSensor(task_id="w", queue_url="http://q", size_limit=10, window_minutes=30,
                                 aws_conn_id="c", poll_interval=0.05)
    sensor.settings = type("S", (), {"queue_url": None, "window_size_limit": 10, "window_minutes": 30,  # type: ignore[assignment]
                                     "aws_conn_id": "aws_default", "region_name": None})()
    return sensor


def _first_event(trigger: ScoringWindowTrigger) -> Any:
    async def run() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    return asyncio.run(asyncio.wait_for(run(), 30))


def _depth(value: int | Exception) -> Any:
    def read(self: SqsIntakeHook, queue_url: str) -> int:
        if isinstance(value, Exception):
            raise value
        return value

    return read


def test_sensor_and_trigger_agree_on_a_failed_depth_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SqsIntakeHook, "approximate_depth", _depth(ConnectionError("queue down")))
    sensor = _sensor()
    open_window = floor_to_window(datetime.now(UTC), 30)  # a boundary run: its window ends in the future
    assert sensor.poke({"logical_date": open_window}) is False  # type: ignore[arg-type]
    ended = open_window - timedelta(minutes=30)
    assert sensor.poke({"logical_date": ended}) is True  # type: ignore[arg-type]
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    event = _first_event(ScoringWindowTrigger(window_end=soon.isoformat(), queue_url="http://q", size_limit=10,
                                              aws_conn_id="c", poll_interval=0.05))
    assert (event["status"], event["reason"], event["depth"]) == ("closed", "time", None)


def test_sensor_and_trigger_agree_on_a_deep_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SqsIntakeHook, "approximate_depth", _depth(10))
    sensor = _sensor()
    open_window = floor_to_window(datetime.now(UTC), 30)
    assert sensor.poke({"logical_date": open_window}) is True  # type: ignore[arg-type]
    trigger = sensor._trigger({"logical_date": open_window})  # type: ignore[arg-type]
    event = _first_event(trigger)
    assert (event["reason"], event["depth"]) == ("size", 10)
