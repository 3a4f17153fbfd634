"""Sensor that waits for a scoring window to close (time or queue size, whichever first)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context

from warpspeed.operators._base import WarpSpeedSettingsMixin, aws_template_fields, checked_event
from warpspeed.triggers.sqs import ScoringWindowTrigger
from warpspeed.window.rule import window_from_context

CLOSED_AT_KEY = "closed_at"
"""XCom key under which the sensor records when its window closed (ISO 8601, never after the window's end)."""
SHORT_WAIT_S = 10.0
"""A window that ends within this many seconds is waited for in the worker instead of deferred.

So short a deferral frees the slot for less time than the hand-off takes (the task exits, the
triggerer polls, the task starts again), and Airflow 3.3's scheduler can fail the resumed attempt
when the trigger fires that soon: the deferring attempt's late "success" event arrives once the
resumed attempt is running and is taken for a state mismatch (apache/airflow#72716). The live
test saw it as a retried ``wait_for_window``: a run that started 57 s into its 1-minute window
deferred for 3 s. Kept short: a sensor whose task took 21 s to start (bundle loading under load)
began 29.8 s before its window's end, and at 30 s it would not have deferred at all."""


class ScoringWindowSensor(BaseSensorOperator, WarpSpeedSettingsMixin):
    """Wait until the run's window has ended or the request queue is deep enough.

    Deferrable by default, whatever ``[operators] default_deferrable`` says (stock Airflow's is
    false, which would hold a worker slot for the whole window): the wait happens in the
    triggerer (a window that ends within :data:`SHORT_WAIT_S` is waited for in the worker). Pass
    ``deferrable=False`` to poke from a worker instead. Settings left as None
    come from the ``[warpspeed]`` config section. Poking applies the trigger's close rule
    (:mod:`warpspeed.window.close`): a failed depth check is logged and looked at again.

    :param queue_url: request queue; None means ``[warpspeed] queue_url``.
    :param size_limit: queue depth that closes the window early.
    :param window_minutes: window length.
    :param aws_conn_id: AWS connection for SQS (templated); None means ``[warpspeed] aws_conn_id``.
    :param region_name: AWS region (templated); None means ``[warpspeed] region``, else the connection's.
    :param poll_interval: seconds between checks.
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields = aws_template_fields("queue_url", "size_limit", "window_minutes")
    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        queue_url: str | None = None,
        size_limit: int | None = None,
        window_minutes: int | None = None,
        aws_conn_id: str | None = None,
        region_name: str | None = None,
        poll_interval: float = 30.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.queue_url = queue_url
        self.size_limit = size_limit
        self.window_minutes = window_minutes
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    def _resolved(self) -> tuple[str | None, int, int]:
        s = self.settings
        return (
            self.queue_url or s.queue_url,
            int(self.size_limit or s.window_size_limit),
            int(self.window_minutes or s.window_minutes),
        )

    def _trigger(self, context: Context) -> ScoringWindowTrigger:
        queue_url, size_limit, minutes = self._resolved()
        return ScoringWindowTrigger(
            window_end=window_from_context(context, minutes).end.isoformat(),
            queue_url=queue_url,
            size_limit=size_limit,
            aws_conn_id=self.settings.aws_conn_id,
            region_name=self.settings.region_name,
            poll_interval=self.poll_interval,
        )

    def poke(self, context: Context) -> bool:
        """Return True once the window has closed (the trigger's rule; a failed depth check waits)."""
        check = self._trigger(context).check(datetime.now(UTC))
        check.log_to(self.log)
        return check.closed

    def _record_close(self, context: Context, at: datetime) -> None:
        """Push when the window closed: ``at``, or the window's end when that was earlier (a late run)."""
        ti = context.get("ti")
        if ti is None:  # nowhere to record it (a direct call outside a task run)
            return
        end = window_from_context(context, self._resolved()[2]).end
        ti.xcom_push(key=CLOSED_AT_KEY, value=min(at, end).isoformat())

    def execute(self, context: Context) -> Any:
        """Close at once if the window is over; wait here if it ends within :data:`SHORT_WAIT_S`, else defer."""
        if not self.deferrable:
            result = super().execute(context)
            self._record_close(context, datetime.now(UTC))
            return result
        if self.poke(context):
            self._record_close(context, datetime.now(UTC))
            return None
        end = window_from_context(context, self._resolved()[2]).end
        if (end - datetime.now(UTC)).total_seconds() <= SHORT_WAIT_S:
            self._wait_here(context, end)
            return None
        self.defer(
            trigger=self._trigger(context),
            method_name="execute_complete",
            timeout=timedelta(minutes=self._resolved()[2]) + timedelta(hours=1),
        )
        return None

    def _wait_here(self, context: Context, end: datetime) -> None:
        """Poke until the window closes (it ends within :data:`SHORT_WAIT_S`), sleeping ``poll_interval`` at most."""
        self.log.info("Window ends at %s, within %.0f s: waiting here instead of deferring", end.isoformat(),
                      SHORT_WAIT_S)
        while True:
            time.sleep(max(0.0, min(self.poll_interval, (end - datetime.now(UTC)).total_seconds())))
            if self.poke(context):
                self._record_close(context, datetime.now(UTC))
                return

    def execute_complete(self, context: Context, event: Mapping[str, Any] | None = None) -> str:
        """Check the trigger's event and return why the window closed."""
        event = checked_event(event, status="closed", failed="window trigger ended without closing the window")
        self.log.info("Window closed by %s (depth %s)", event.get("reason"), event.get("depth"))
        closed_at = event.get("closed_at")
        self._record_close(context, datetime.fromisoformat(closed_at) if closed_at else datetime.now(UTC))
        return str(event["reason"])
