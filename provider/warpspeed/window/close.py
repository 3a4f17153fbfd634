"""When a window closes: at its end, or earlier once the request queue is deep enough.

The one close rule, applied by both waits: :class:`~warpspeed.triggers.sqs.ScoringWindowTrigger`
in the triggerer and :class:`~warpspeed.sensors.sqs.ScoringWindowSensor` when it pokes from a
worker. A failed depth check never fails the wait and never keeps the window open past its end:
the wait logs it and looks again at its next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CLOSED_BY_TIME = "time"
CLOSED_BY_SIZE = "size"


def close_reason(now: datetime, end: datetime, depth: int | BaseException | None, size_limit: int) -> str | None:
    """Return why the window is closed (``"time"`` or ``"size"``), or None while it stays open.

    :param depth: the queue's approximate depth; None when there is no queue or it was not
        read; the exception of a failed read, which leaves the window open until its end.
    """
    if now >= end:
        return CLOSED_BY_TIME
    if isinstance(depth, int) and depth >= size_limit:
        return CLOSED_BY_SIZE
    return None


@dataclass(frozen=True)
class CloseCheck:
    """One look at a window: whether it closed, and what the queue said."""

    end: datetime
    size_limit: int
    reason: str | None
    depth: int | None = None
    error: BaseException | None = None

    @property
    def closed(self) -> bool:
        """Tell whether the window has closed."""
        return self.reason is not None

    def log_to(self, log: Any) -> None:
        """Log what this look found (a failed depth check as a warning)."""
        if self.error is not None:
            log.warning("Queue depth check failed (%s); the window still closes at %s", self.error,
                        self.end.isoformat())
        elif self.depth is not None:
            log.info("Queue depth %d of %d; window closes at %s", self.depth, self.size_limit, self.end.isoformat())
        if self.reason == CLOSED_BY_TIME:
            log.info("Window closed by time (%s)", self.end.isoformat())


def check_close(now: datetime, end: datetime, size_limit: int, read_depth: Callable[[], int] | None) -> CloseCheck:
    """Apply :func:`close_reason`, reading the queue depth only while the window is still open.

    :param read_depth: returns the queue's approximate depth; None for a time-only window. A
        read that raises is recorded in the result, never raised.
    """
    depth: int | BaseException | None = None
    if read_depth is not None and now < end:
        try:
            depth = read_depth()
        except Exception as err:  # a flaky queue must not fail the wait nor keep the window open
            depth = err
    return CloseCheck(
        end=end,
        size_limit=size_limit,
        reason=close_reason(now, end, depth, size_limit),
        depth=depth if isinstance(depth, int) else None,
        error=depth if isinstance(depth, BaseException) else None,
    )
