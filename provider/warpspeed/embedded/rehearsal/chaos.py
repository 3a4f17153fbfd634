"""Spot interruption on request: a reclaimed Spot node takes the executors of a running step with it.

A rule (``POST /_rehearsal/spot`` on the control plane, :meth:`RehearsalStack.inject_spot
<warpspeed.embedded.rehearsal.stack.RehearsalStack.inject_spot>`, or ``make rehearsal``'s
``SPOT=<regex>``) names steps by a regular expression on their name. The next running Spark step
that matches loses its busy executors (SIGKILL of their JVMs, as when the node disappears) round
after round until Spark gives up on a task (``spark.task.maxFailures``, 4 by default) and the
driver aborts the job with ``ExecutorLostFailure``: the step fails as a step on a reclaimed Spot
fleet does, and the product's Spot-loss rule resubmits it on on-demand capacity. A rule is used
once. Steps pinned to on-demand nodes (``nodeLabelExpression=ON_DEMAND`` in their Args: YARN node
labels on EMR) are never hit, as on EMR.

Emulated (docs/emr.md): the reclaim itself and its timing; what Spark and the product do with it
is real.
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
    """Reclaim the executors of the next matching Spark step, up to ``rounds`` times, ``spacing`` s apart."""

    pattern: str = ".*"
    rounds: int = 20
    spacing: float = 1.0
    after_seconds: float = 0.0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SpotRule:
        """Build from the admin request's JSON body."""
        return cls(**{k: raw[k] for k in ("pattern", "rounds", "spacing", "after_seconds") if k in raw})

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
