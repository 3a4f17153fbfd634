"""Trigger that waits for a batch of EMR steps on one cluster, one ListSteps poll at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from airflow.triggers.base import TriggerEvent
from asgiref.sync import sync_to_async

from warpspeed.hooks.aws_retry import next_poll_delay
from warpspeed.hooks.emr import EmrPoolHook
from warpspeed.triggers._base import DeclaredTrigger


@dataclass(kw_only=True, eq=False, repr=False)
class EmrStepsTrigger(DeclaredTrigger):
    """Fire once every step in ``step_ids`` has ended on ``cluster_id``.

    Each poll is one ListSteps page per 50 steps of the cluster (not one call per step); the
    interval grows 1.5x per poll up to ``max_poll_interval`` with +-20% jitter, so many
    deferred tasks do not poll in lockstep. Throttling is retried inside the hook.

    :param cluster_id: the cluster running the steps.
    :param step_ids: the steps to wait for.
    :param aws_conn_id: AWS connection for EMR.
    :param region_name: AWS region (None: the connection's).
    :param log_uri: the cluster's log URI (to point at each step's logs).
    :param poll_interval: seconds before the second poll.
    :param max_poll_interval: longest wait between polls.
    :param echo: JSON the task deferred with, returned in every event (see :meth:`echoing`).
    """

    cluster_id: str
    step_ids: list[str]
    aws_conn_id: str | None = "aws_default"
    region_name: str | None = None
    log_uri: str | None = None
    poll_interval: float = 30.0
    max_poll_interval: float = 300.0
    echo: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.step_ids = list(self.step_ids)

    def echoing(self, state: dict[str, Any]) -> EmrStepsTrigger:
        """Return this trigger carrying ``state`` (what the task deferred with) into its events.

        The triggerer hands a resumed task the deferral's kwargs plus the event; ``airflow dags
        test`` (Airflow 3.3, triggers run in line) hands it the event alone, so a task that keeps
        its flow in the kwargs would lose it there. With the state in the event, both resume.
        """
        return replace(self, echo=dict(state))

    def _event(self, payload: dict[str, Any]) -> TriggerEvent:
        return TriggerEvent(payload | ({"echo": self.echo} if self.echo is not None else {}))

    def hook(self) -> EmrPoolHook:
        """Build the EMR hook (in the triggerer process)."""
        return EmrPoolHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until every step is terminal; yield one event with every step's state."""
        hook = self.hook()
        polls = 0
        while True:
            try:
                states = await sync_to_async(hook.step_states)(self.cluster_id, self.step_ids, self.log_uri)
            except Exception as err:
                yield self._event({"status": "error", "cluster_id": self.cluster_id, "message": str(err)})
                return
            pending = [s for s in states if not s.terminal]
            if not pending:
                yield self._event(
                    {"status": "done", "cluster_id": self.cluster_id, "steps": [s.to_dict() for s in states]}
                )
                return
            self.log.info("%d of %d steps on %s still running", len(pending), len(states), self.cluster_id)
            await asyncio.sleep(next_poll_delay(polls, self.poll_interval, self.max_poll_interval))
            polls += 1
