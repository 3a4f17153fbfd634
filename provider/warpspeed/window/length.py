"""The lengths a scoring window may have, and the cron expression that fires on its boundaries (pure).

Windows are aligned to the epoch, so a cron expression can fire on every boundary only when the
length divides an hour or is whole hours that divide a day. The settings check
``[warpspeed] window_minutes`` with :func:`check_window_minutes` and the scoring DAG is scheduled
with :func:`window_cron`: one rule, so a length the settings accept always makes a schedule.
"""

from __future__ import annotations

from warpspeed.exceptions import WarpSpeedConfigError

DAY_MINUTES = 24 * 60
WINDOW_LENGTHS: tuple[int, ...] = tuple(
    m for m in range(1, DAY_MINUTES + 1) if (m < 60 and 60 % m == 0) or (m % 60 == 0 and DAY_MINUTES % m == 0)
)
"""Every allowed ``window_minutes``: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, ... 720, 1440."""


def check_window_minutes(minutes: int) -> int:
    """Return ``minutes`` if it is an allowed window length, else say which lengths are."""
    if minutes not in WINDOW_LENGTHS:
        raise WarpSpeedConfigError(
            f"[warpspeed] window_minutes={minutes} must be between 1 and {DAY_MINUTES} and divide an hour or be "
            "whole hours that divide a day (the schedule fires on every window boundary): use one of "
            f"{', '.join(map(str, WINDOW_LENGTHS))}"
        )
    return minutes


def window_cron(minutes: int) -> str:
    """Return the cron expression whose fire times are exactly the window boundaries (UTC)."""
    check_window_minutes(minutes)
    if minutes < 60:
        return f"*/{minutes} * * * *"
    return "0 0 * * *" if minutes == DAY_MINUTES else f"0 */{minutes // 60} * * *"
