"""Trigger that closes a scoring window at its end time or when the queue is deep enough."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from warpspeed.hooks.sqs import SqsIntakeHook


class ScoringWindowTrigger(BaseTrigger):
    """Fire when ``window_end`` has passed or the queue holds ``size_limit`` messages.

    Runs in the triggerer, so the waiting sensor holds no worker slot.

    :param window_end: ISO-8601 end of the window (aware).
    :param queue_url: queue whose approximate depth can close the window early; None for
        time only.
    :param size_limit: depth that closes the window.
    :param aws_conn_id: AWS connection for the queue.
    :param poll_interval: seconds between depth checks.
    """

    def __init__(
        self,
        *,
        window_end: str,
        queue_url: str | None,
        size_limit: int,
        aws_conn_id: str | None = "aws_default",
        poll_interval: float = 30.0,
    ) -> None:
        super().__init__()
        self.window_end = window_end
        self.queue_url = queue_url
        self.size_limit = size_limit
        self.aws_conn_id = aws_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the arguments that rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "window_end": self.window_end,
                "queue_url": self.queue_url,
                "size_limit": self.size_limit,
                "aws_conn_id": self.aws_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    def _depth(self) -> int:
        assert self.queue_url is not None
        return SqsIntakeHook(aws_conn_id=self.aws_conn_id).approximate_depth(self.queue_url)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the window closes, then yield one event saying why."""
        from asgiref.sync import sync_to_async

        end = datetime.fromisoformat(self.window_end)
        while True:
            now = datetime.now(UTC)
            if now >= end:
                yield TriggerEvent({"status": "closed", "reason": "time", "depth": None,
                                    "closed_at": now.isoformat()})
                return
            if self.queue_url:
                try:
                    depth = await sync_to_async(self._depth)()
                except Exception as err:  # a flaky queue must not keep the window open forever
                    self.log.warning("Queue depth check failed (%s); the window still closes at %s", err, end)
                else:
                    self.log.info("Queue depth %d of %d; window closes at %s", depth, self.size_limit, end)
                    if depth >= self.size_limit:
                        yield TriggerEvent({"status": "closed", "reason": "size", "depth": depth,
                                            "closed_at": now.isoformat()})
                        return
            await asyncio.sleep(max(0.0, min(self.poll_interval, (end - now).total_seconds())))
