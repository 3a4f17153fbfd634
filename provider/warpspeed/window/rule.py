"""Scoring windows: which 30-minute slice of time a DAG run handles, and the parse-time settings DAGs read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from warpspeed.config.settings import configured_int
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.window.length import window_cron  # noqa: F401  (re-exported: DAG files import it from here)
from warpspeed.window.manifests import WindowLayout, window_id_for


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)``; its id is derived from its start."""

    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        """Return the window id, e.g. ``20261120T2100Z``."""
        return window_id_for(self.start)

    def layout(self, storage_prefix: str) -> WindowLayout:
        """Return where this window's documents live."""
        return WindowLayout(storage_prefix, self.id)


def floor_to_window(moment: datetime, minutes: int) -> datetime:
    """Return the start of the ``minutes``-long window (aligned to the epoch) containing ``moment``."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    step = timedelta(minutes=minutes)
    return epoch + ((moment.astimezone(UTC) - epoch) // step) * step


def window_for(moment: datetime, minutes: int) -> Window:
    """Return the window a run dated ``moment`` scores (the one rule for every kind of run).

    A date on a window boundary opens that window: scheduled runs are dated at the boundary and
    wait (deferred) for their window to close. Any other date lies inside a window that is still
    open, so the run scores the window that ended last before it: a manual trigger or an
    ``airflow dags test`` without a date (both dated "now") finishes at once.
    """
    moment = datetime.fromtimestamp(moment.timestamp(), tz=UTC)
    start = floor_to_window(moment, minutes)
    if start != moment:
        start -= timedelta(minutes=minutes)
    return Window(start, start + timedelta(minutes=minutes))


def window_from_context(context: Mapping[str, Any], minutes: int) -> Window:
    """Return the window of a DAG run, dated by its logical date (or ``run_after`` without one)."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return window_for(moment, minutes)


def configured_window_minutes() -> int:
    """Return ``[warpspeed] window_minutes`` from Airflow's config (cheap: no network, no DB)."""
    return configured_int("window_minutes", 30)


def configured_retry_delay() -> timedelta:
    """Return ``[warpspeed] task_retry_delay_seconds`` (default 60) for DAG ``default_args``.

    Read when a DAG file is parsed, like :func:`configured_window_minutes`: cheap, no network.
    """
    seconds = configured_int("task_retry_delay_seconds", 60)
    if not 1 <= seconds <= 3600:
        raise WarpSpeedConfigError(
            f"[warpspeed] task_retry_delay_seconds={seconds} must be between 1 and 3600 seconds"
        )
    return timedelta(seconds=seconds)
