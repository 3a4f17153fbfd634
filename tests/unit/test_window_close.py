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
from warpspeed.window.rule import floor_to_window, window_from_context

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


class _Clock:
    """Stand in for the sensor module's ``datetime`` and ``time``: ``sleep`` moves ``now`` on."""

    def __init__(self, now: datetime) -> None:
        self.at, self.slept = now, []

    def now(self, tz: Any = None) -> datetime:
        return self.at

    def fromisoformat(self, value: str) -> datetime:
        return datetime.fromisoformat(value)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


class _Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize("left_s", [1, 5, 10])
def test_a_window_that_ends_within_10_s_is_waited_for_in_the_worker(monkeypatch: pytest.MonkeyPatch,
                                                                      left_s: int) -> None:
    """A deferral that short races Airflow's scheduler (apache/airflow#72716): the sensor waits here instead."""
    from warpspeed.sensors import sqs as module

    start = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    end = window_from_context({"logical_date": start}, 30).end
    clock = _Clock(end - timedelta(seconds=left_s))
    monkeypatch.setattr(module, "datetime", clock)
    monkeypatch.setattr(module, "time", clock)
    monkeypatch.setattr(SqsIntakeHook, "approximate_depth", _depth(0))
    sensor, ti = _sensor(), _Ti()
    sensor.poll_interval = 4
    assert sensor.execute({"logical_date": start, "ti": ti}) is None  # type: ignore[arg-type]  # no TaskDeferred
    assert clock.at == end and sum(clock.slept) == left_s and max(clock.slept) <= 4
    assert ti.pushed == {"closed_at": end.isoformat()}


def test_a_window_that_ends_later_than_10_s_defers(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.exceptions import TaskDeferred

    from warpspeed.sensors import sqs as module

    start = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)
    clock = _Clock(window_from_context({"logical_date": start}, 30).end - timedelta(seconds=11))
    monkeypatch.setattr(module, "datetime", clock)
    monkeypatch.setattr(module, "time", clock)
    monkeypatch.setattr(SqsIntakeHook, "approximate_depth", _depth(0))
    with pytest.raises(TaskDeferred):
        _sensor().execute({"logical_date": start, "ti": _Ti()})  # type: ignore[arg-type]
    assert clock.slept == []
