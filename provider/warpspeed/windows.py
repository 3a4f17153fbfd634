"""Scoring windows: which 30-minute slice of time a DAG run handles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from warpspeed.manifests import WindowLayout, window_id_for


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


def window_from_context(context: Mapping[str, Any], minutes: int) -> Window:
    """Return the window of a DAG run: it starts at the logical date (or run_after, floored)."""
    start = context.get("logical_date")
    if start is None:
        start = floor_to_window(context["dag_run"].run_after, minutes)
    start = datetime.fromtimestamp(start.timestamp(), tz=UTC)
    return Window(start, start + timedelta(minutes=minutes))
