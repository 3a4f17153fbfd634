"""Trigger that closes a scoring window at its end time or when the queue is deep enough."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from airflow.triggers.base import TriggerEvent

from warpspeed.hooks.sqs import SqsIntakeHook
from warpspeed.triggers._base import DeclaredTrigger
from warpspeed.window.close import CloseCheck, check_close


@dataclass(kw_only=True, eq=False, repr=False)
class ScoringWindowTrigger(DeclaredTrigger):
    """Fire when ``window_end`` has passed or the queue holds ``size_limit`` messages.

    Runs in the triggerer, so the waiting sensor holds no worker slot. The rule, a failed depth
    check included, is :mod:`warpspeed.window.close`; the sensor applies it through :meth:`check`.

    :param window_end: ISO-8601 end of the window (aware).
    :param queue_url: queue whose approximate depth can close the window early; None for
        time only.
    :param size_limit: depth that closes the window.
    :param aws_conn_id: AWS connection for the queue.
    :param region_name: AWS region (None: the connection's).
    :param poll_interval: seconds between depth checks.
    """

    window_end: str
    queue_url: str | None
    size_limit: int
    aws_conn_id: str | None = "aws_default"
    poll_interval: float = 30.0
    region_name: str | None = None

    def _depth(self) -> int:
        assert self.queue_url is not None
        hook = SqsIntakeHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        return hook.approximate_depth(self.queue_url)

    def check(self, now: datetime) -> CloseCheck:
        """Look at the window once: its end, then (while open) the queue depth; never raise."""
        end = datetime.fromisoformat(self.window_end)
        return check_close(now, end, self.size_limit, self._depth if self.queue_url else None)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the window closes, then yield one event saying why."""
        from asgiref.sync import sync_to_async

        end = datetime.fromisoformat(self.window_end)
        while True:
            now = datetime.now(UTC)
            check = await sync_to_async(self.check)(now)
            check.log_to(self.log)
            if check.closed:
                yield TriggerEvent({"status": "closed", "reason": check.reason, "depth": check.depth,
                                    "closed_at": now.isoformat()})
                return
            await asyncio.sleep(max(0.0, min(self.poll_interval, (end - now).total_seconds())))
