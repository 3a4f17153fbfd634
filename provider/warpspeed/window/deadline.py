"""The scoring window's deadline: when a window counts as late, and the Deadline Alert that says so.

A run dated on a window boundary scores the window it opens, so its window ends at the logical
date plus ``window_minutes``; it is late once ``[warpspeed] window_deadline_minutes`` more have
passed (default: one more window length; fractions of a minute allowed; ``0``: no deadline). The
alert's callback, :func:`warpspeed.observability.deadline.window_deadline_missed`, runs in the
triggerer: it logs, counts ``warpspeed.window.deadline_missed`` and calls the notifier
``[warpspeed] deadline_notifier`` names.

Airflow 3.3.2's ``airflow dags test`` exits 1 after a successful run of a DAG with a deadline
(apache/airflow#73428): set ``window_deadline_minutes = 0`` where ``dags test`` runs
(:func:`warpspeed.embedded.stack.dags_test` does). Runs without a logical date (a manual trigger
without one) get no deadline: Airflow skips the alert.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

from warpspeed.config.settings import SECTION
from warpspeed.exceptions import WarpSpeedConfigError

if TYPE_CHECKING:
    from airflow.sdk.definitions.deadline import DeadlineAlert

DEADLINE_KEY = "window_deadline_minutes"
DEADLINE_CALLBACK = "warpspeed.observability.deadline.window_deadline_missed"
"""Import path of the callback (stored in the serialized DAG; the triggerer imports it from the package)."""
ALERT_NAME = "window_deadline"


def deadline_minutes(raw: str | None, window_minutes: int) -> float:
    """Return the minutes a window may take after its end: ``raw`` (a number, 0 = none), else ``window_minutes``."""
    if raw is None or raw.strip() == "":
        return float(window_minutes)
    try:
        minutes = float(raw)
    except ValueError:
        minutes = math.nan
    if not math.isfinite(minutes) or minutes < 0:
        raise WarpSpeedConfigError(
            f"[{SECTION}] {DEADLINE_KEY}={raw!r} must be a number of minutes, 0 or more (0: no deadline; "
            f"unset: the window length, {window_minutes})"
        )
    return minutes


def configured_deadline_minutes(window_minutes: int) -> float:
    """Return ``[warpspeed] window_deadline_minutes`` (read when the DAG file is parsed: cheap, no network)."""
    from airflow.configuration import conf

    return deadline_minutes(conf.get(SECTION, DEADLINE_KEY, fallback=None), window_minutes)


def window_deadline(window_minutes: int, minutes: float | None = None) -> DeadlineAlert | None:
    """Return the scoring DAG's Deadline Alert (None when the deadline is off).

    :param minutes: minutes after the window's end; None reads :func:`configured_deadline_minutes`.
    """
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    minutes = configured_deadline_minutes(window_minutes) if minutes is None else minutes
    if minutes == 0:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(minutes=window_minutes + minutes),
        callback=AsyncCallback(DEADLINE_CALLBACK, kwargs={"window_minutes": window_minutes,
                                                          "deadline_minutes": minutes}),
        name=ALERT_NAME,
    )
