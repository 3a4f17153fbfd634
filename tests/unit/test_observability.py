"""Issue 25: the window's metrics through Airflow's Stats, and its deadline alert."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseNotifier

from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.observability import metrics
from warpspeed.observability.deadline import configured_notifier, window_deadline_missed
from warpspeed.window.deadline import DEADLINE_CALLBACK, deadline_minutes, window_deadline


class FakeStats:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any, Any]] = []

    def incr(self, name: str, count: int = 1, tags: Any = None) -> None:
        self.sent.append(("incr", name, count, tags))

    def gauge(self, name: str, value: float, tags: Any = None) -> None:
        self.sent.append(("gauge", name, value, tags))

    def timing(self, name: str, value: Any, tags: Any = None) -> None:
        self.sent.append(("timing", name, value, tags))


@pytest.fixture
def stats(monkeypatch: pytest.MonkeyPatch) -> FakeStats:
    fake = FakeStats()
    monkeypatch.setattr(metrics, "_stats", lambda: fake)
    return fake


@dataclass
class Row:
    workload: str
    status: str
    rows: int
    cost_total_usd: float


@dataclass
class Intake:
    valid: int
    invalid: int
    duplicates: int
    dead_lettered: int


def test_collect_and_publish_send_the_windows_figures(stats: FakeStats) -> None:
    metrics.collected(Intake(valid=48, invalid=2, duplicates=0, dead_lettered=2))
    closed = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    metrics.published([Row("scoring", "succeeded", 100, 0.25), Row("scoring", "failed", 0, 0.01),
                       Row("intent", "partial", 40, 0.1)],
                      closed_at=closed, published_at=closed + timedelta(seconds=95), s3_requests=17)
    sent = {(kind, name, json.dumps(tags, sort_keys=True)): value for kind, name, value, tags in stats.sent}
    assert sent[("incr", metrics.REQUESTS, "null")] == 48
    assert sent[("incr", metrics.INVALID, "null")] == 2 and sent[("incr", metrics.DEAD_LETTERED, "null")] == 2
    assert ("incr", metrics.DUPLICATES, "null") not in sent  # nothing to count: nothing sent
    assert sent[("incr", metrics.BATCHES, '{"workload": "scoring"}')] == 2
    assert sent[("incr", metrics.BATCHES_FAILED, '{"workload": "scoring"}')] == 1
    assert ("incr", metrics.BATCHES_FAILED, '{"workload": "intent"}') not in sent  # partial is not failed
    assert sent[("incr", metrics.ROWS_SCORED, '{"workload": "intent"}')] == 40
    assert sent[("gauge", metrics.COST_USD, "null")] == pytest.approx(0.36)
    assert sent[("timing", metrics.CLOSE_TO_PUBLISH, "null")] == timedelta(seconds=95)
    assert sent[("incr", metrics.S3_REQUESTS, "null")] == 17
    assert all(name.startswith("warpspeed.window.") for name in metrics.ALL)


def test_metric_names_are_valid_for_airflow_stats() -> None:
    from airflow.sdk._shared.observability.metrics.validators import stat_name_default_handler

    for name in metrics.ALL:
        assert stat_name_default_handler(name) == name


def test_the_deadline_defaults_to_one_window_and_zero_turns_it_off() -> None:
    assert deadline_minutes(None, 30) == 30.0 and deadline_minutes("", 30) == 30.0
    assert deadline_minutes("0.05", 2) == 0.05
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(WarpSpeedConfigError, match="window_deadline_minutes"):
            deadline_minutes(bad, 30)
    assert window_deadline(30, 0) is None
    alert = window_deadline(30, 15)
    assert alert is not None and alert.name == "window_deadline"
    assert alert.interval == timedelta(minutes=45)  # logical date (the window's start) + window + 15 min
    assert type(alert.reference).__name__ == "DagRunLogicalDateDeadline"
    assert alert.callback.path == DEADLINE_CALLBACK
    assert alert.callback.kwargs == {"window_minutes": 30, "deadline_minutes": 15}


class FileNotifier(BaseNotifier):
    """A notifier with only the sync ``notify``: run off the event loop."""

    template_fields = ("message",)

    def __init__(self, path: str, message: str) -> None:
        super().__init__()
        self.path, self.message = path, message

    def notify(self, context: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(self.message + "\n")


CALLS: list[tuple[str, dict[str, Any]]] = []


def record(context: dict[str, Any], **kwargs: Any) -> None:
    CALLS.append(("sync", {"context": context, **kwargs}))


async def record_async(context: dict[str, Any], **kwargs: Any) -> None:
    CALLS.append(("async", {"context": context, **kwargs}))


def _alert_context() -> dict[str, Any]:
    return {"dag_run": {"dag_id": "warpspeed_scoring", "dag_run_id": "scheduled__x",
                        "logical_date": "2026-11-20T21:00:00Z"},
            "deadline": {"id": "d1", "deadline_time": "2026-11-20T22:00:00Z"}}


def test_the_callback_logs_counts_and_calls_the_configured_notifier(
    stats: FakeStats, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    CALLS.clear()
    monkeypatch.setenv("AIRFLOW__WARPSPEED__DEADLINE_NOTIFIER", f"{__name__}.record")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__DEADLINE_NOTIFIER_KWARGS", '{"channel": "ops"}')
    said = asyncio.run(window_deadline_missed(_alert_context(), window_minutes=30, deadline_minutes=30))
    assert "window 20261120T2100Z of warpspeed_scoring" in said and "missed its deadline" in said
    assert any(r.levelname == "WARNING" and "20261120T2100Z" in r.getMessage() for r in caplog.records)
    assert [s[:2] for s in stats.sent] == [("incr", metrics.DEADLINE_MISSED)]
    (kind, call), = CALLS
    assert kind == "sync" and call["channel"] == "ops"
    assert call["context"]["window"] == {"id": "20261120T2100Z", "start": "2026-11-20T21:00:00+00:00",
                                         "end": "2026-11-20T21:30:00+00:00"}
    asyncio.run(window_deadline_missed(_alert_context(), window_minutes=30, deadline_minutes=30,
                                       notifier=f"{__name__}.record_async", notifier_kwargs={"to": "me"}))
    assert CALLS[-1][0] == "async" and CALLS[-1][1]["to"] == "me"


def test_an_airflow_notifier_class_is_built_from_the_kwargs_and_rendered(
    stats: FakeStats, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__WARPSPEED__DEADLINE_NOTIFIER", f"{__name__}.FileNotifier")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__DEADLINE_NOTIFIER_KWARGS", json.dumps(
        {"path": str(tmp_path / "alerts.txt"), "message": "window {{ window.id }} is late ({{ dag_run.dag_id }})"}))
    asyncio.run(window_deadline_missed(_alert_context(), window_minutes=30, deadline_minutes=30))
    assert (tmp_path / "alerts.txt").read_text() == "window 20261120T2100Z is late (warpspeed_scoring)\n"


def test_bad_notifier_kwargs_are_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__WARPSPEED__DEADLINE_NOTIFIER_KWARGS", "[1]")
    with pytest.raises(WarpSpeedConfigError, match="JSON object"):
        configured_notifier()
