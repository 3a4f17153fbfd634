"""Spot interruption on request: a reclaimed Spot node takes the executors of a running step with it.

A rule (``POST /_rehearsal/spot`` on the control plane, :meth:`RehearsalStack.inject_spot
<warpspeed.embedded.rehearsal.stack.RehearsalStack.inject_spot>`, or ``python -m
warpspeed.embedded.rehearsal spot <regex>``) names steps by a regular expression on their name. The
next running Spark step that matches loses its busy executors: their JVMs are SIGKILLed, as when the
node disappears, ``rounds`` times (Spark sees ``ExecutorLostFailure`` for the tasks they ran and
retries them). If Spark has not given up on the job ``grace`` seconds after the last round (it
takes ``spark.task.maxFailures`` = 4 losses of one task, minutes on a loaded machine), the runner
ends the step as a step whose Spot fleet did not come back: its driver is stopped and the step
FAILED with :func:`spot_message` (the reclaimed instance, the lost executors, the driver's own
last loss line). The product's Spot-loss rule then resubmits it on on-demand capacity. A rule is
used once. Steps pinned to on-demand nodes (``nodeLabelExpression=ON_DEMAND`` in their Args: YARN
node labels on EMR) are never hit, as on EMR.

Emulated (docs/emr.md): the reclaim, its timing, and that the step does not outlive it; the lost
executors, Spark's reaction and the product's retry are real.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warpspeed.embedded.rehearsal.spark_standalone import StandaloneCluster

log = logging.getLogger(__name__)

ON_DEMAND_MARK = "nodeLabelExpression=ON_DEMAND"
APP_ID = re.compile(r"app ID (app-\S+)")
UI_URL = re.compile(r"started at (http://\S+)")


@dataclass
class SpotRule:
    """Reclaim the executors of the next matching Spark step ``rounds`` times, ``spacing`` s apart.

    :param grace: seconds after the last round for Spark to fail the job on its own, before the
        runner ends the step as lost. Short by default: new executors on the surviving workers
        finish a small job within seconds (seen: 13 s after a second round, with a 15 s grace), and
        a step that completes was not lost to Spot, so the retry would go unexercised.
    """

    pattern: str = ".*"
    rounds: int = 1
    spacing: float = 3.0
    after_seconds: float = 0.0
    grace: float = 3.0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SpotRule:
        """Build from the admin request's JSON body."""
        return cls(**{k: raw[k] for k in ("pattern", "rounds", "spacing", "after_seconds", "grace") if k in raw})

    def matches(self, name: str, args: list[str]) -> bool:
        """Tell whether the rule hits a step of this name and Args (never an on-demand-pinned one)."""
        return not any(ON_DEMAND_MARK in a for a in args) and re.search(self.pattern, name) is not None


@dataclass
class Reclaim:
    """A rule applied to one step: the kills so far (seconds since the step started, pids)."""

    rule: SpotRule
    kills: list[tuple[float, list[int]]] = field(default_factory=list)
    last: float = 0.0

    def due(self, ran_for: float) -> bool:
        """Tell whether another round may run now."""
        return (len(self.kills) < self.rule.rounds and ran_for >= self.rule.after_seconds
                and time.monotonic() - self.last >= self.rule.spacing)

    @property
    def over(self) -> bool:
        """Tell whether every round ran and the grace after the last one has passed."""
        return len(self.kills) >= self.rule.rounds and time.monotonic() - self.last >= self.rule.grace


def busy_executors(spark: StandaloneCluster, app_id: str, driver_output: str) -> list[int]:
    """Return the pids of ``app_id``'s executors that run tasks now.

    Asked of the driver's REST API (``activeTasks``); without a UI, an executor with a child
    process (PySpark's worker daemon) counts as busy.
    """
    executors = spark.executors(app_id)
    ui = UI_URL.findall(driver_output)
    if ui:
        try:
            with urllib.request.urlopen(f"{ui[-1]}/api/v1/applications/{app_id}/executors", timeout=3) as resp:
                active = {str(e["id"]) for e in json.loads(resp.read()) if int(e.get("activeTasks", 0)) > 0}
            return sorted(pid for pid, executor in executors.items() if executor in active)
        except (OSError, ValueError, KeyError):
            pass
    return sorted(spark.python_busy(executors))


def reclaim_round(spark: StandaloneCluster, reclaim: Reclaim, driver_output: str, ran_for: float) -> bool:
    """Kill the busy executors of the step's application once, if there are any; tell whether it did."""
    found = APP_ID.search(driver_output)
    if found is None or not reclaim.due(ran_for):
        return False
    pids = busy_executors(spark, found.group(1), driver_output)
    if not pids:
        return False
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)  # the node is gone, its JVMs with it
        except ProcessLookupError:
            continue
    reclaim.kills.append((round(ran_for, 1), pids))
    reclaim.last = time.monotonic()
    log.info("spot: reclaimed executors %s of %s after %.1f s", pids, found.group(1), ran_for)
    return True


LOSS_LINE = re.compile(r"(ExecutorLostFailure.*|Lost executor \S+ on \S+: .*)")
SPOT_INSTANCE = "i-0rehearsal0spot0task"


def spot_message(reclaim: Reclaim, driver_output: str) -> str:
    """Return the failure of a step whose Spot capacity was reclaimed under it (FailureDetails.Message)."""
    lost = sorted({pid for _, pids in reclaim.kills for pid in pids})
    last = LOSS_LINE.findall(driver_output)
    return (f"Spot instance {SPOT_INSTANCE} terminated (capacity reclaimed): lost node with executors {lost}"
            + (f"; the driver's last: {last[-1].strip()}" if last else ""))
