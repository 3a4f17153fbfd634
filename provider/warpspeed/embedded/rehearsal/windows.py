"""Scoring windows on the rehearsal with ``airflow dags test``: what the proof test and the benchmark run.

:class:`DagWindows` holds Airflow's environment on a rehearsal (its AWS and catalog connections,
``compute_backend = emr``, a copy of the DAG bundle whose ``spark_workloads`` always run on Spark)
and runs the shipped ``warpspeed_scoring`` DAG for one closed window at a time, after sending that
window's requests to the SQS server.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warpspeed.embedded import seed
from warpspeed.embedded.airflow_db import ensure_airflow_db
from warpspeed.embedded.rehearsal.data import storage
from warpspeed.embedded.rehearsal.stack import RehearsalStack
from warpspeed.embedded.soak.run import soak_dags_folder
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.embedded.stack import airflow_env, dags_test
from warpspeed.window.manifests import BatchRun, WindowLayout, window_id_for
from warpspeed.window.rule import floor_to_window

WINDOW_MINUTES = 30
TASK_LINE = re.compile(r"^(\S+Z) .*\[DAG TEST\] (starting|end task) task_id=(\S+) map_index=(-?\d+)")


def task_spans(log: str) -> dict[str, tuple[datetime, datetime]]:
    """Return each task's first start and last end in an ``airflow dags test`` log (``task[map index]`` if mapped).

    ``dags test`` runs one task at a time, a deferred one with its trigger in line, so a span is the
    task's own work plus, for a deferred task, its wait for the trigger.
    """
    spans: dict[str, tuple[datetime, datetime]] = {}
    for line in log.splitlines():
        found = TASK_LINE.match(line)
        if found is None:
            continue
        at = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
        key = found.group(3) + (f"[{found.group(4)}]" if found.group(4) != "-1" else "")
        first, _ = spans.get(key, (at, at))
        spans[key] = (first, at)
    return spans


@dataclass
class Window:
    """One window the DAG ran: its plan, its batches' run records and how long ``dags test`` took."""

    window_id: str
    plan: dict[str, Any]
    runs: list[BatchRun]
    seconds: float
    tasks: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    """Each task's span in the ``dags test`` log (:func:`task_spans`)."""

    @property
    def batch_ids(self) -> set[str]:
        """Return the ids of the window's batches."""
        return {b["batch_id"] for b in self.plan["batches"]}


def closed_window(back: int = 0) -> datetime:
    """Return the start of a window that has ended (``back`` windows before the last one)."""
    return floor_to_window(datetime.now(UTC), WINDOW_MINUTES) - timedelta(minutes=WINDOW_MINUTES * (back + 1))


@dataclass
class DagWindows:
    """Airflow's environment on a rehearsal, and the windows run with it."""

    stack: RehearsalStack
    sqs: LocalSqs
    home: Path
    env: dict[str, str]
    windows: dict[str, Window] = field(default_factory=dict)

    @classmethod
    def prepare(cls, stack: RehearsalStack, sqs: LocalSqs, home: Path, db_url: str,
                spark_workloads: tuple[str, ...] = ("scoring",)) -> DagWindows:
        """Copy the DAG bundle under ``home``, build Airflow's environment, migrate its database."""
        dags = soak_dags_folder(home, spark_workloads)
        env = (dict(os.environ) | airflow_env(home, sqs, dags, db_url=db_url) | stack.airflow_env(sqs.endpoint_url)
               | {"AIRFLOW__WARPSPEED__WINDOW_MINUTES": str(WINDOW_MINUTES)})
        ensure_airflow_db(env)
        return cls(stack, sqs, home, env)

    def run(self, name: str, start: datetime, requests: list[tuple[str, str, str, int]]) -> Window:
        """Send ``(tenant, model, workload, estimated accounts)`` requests; run the DAG for the window at ``start``.

        :raises RuntimeError: when the DAG run fails (with the end of its log and of the runner's).
        """
        docs = [{"schema_version": 1, "request_id": f"req-{name}-{i}-{time.time_ns()}", "tenant_id": tenant,
                 "model": model, "model_version": "v1", "workload": workload, "priority": "normal",
                 "estimated_accounts": accounts, "requested_at": (datetime.now(UTC) - timedelta(seconds=5)).isoformat()}
                for i, (tenant, model, workload, accounts) in enumerate(requests)]
        seed.send_bodies(self.sqs.client(), self.sqs.queue_url, [json.dumps(d) for d in docs])
        seconds = self.dags_test("warpspeed_scoring", start, name)
        window_id, documents = window_id_for(start), storage(self.stack)
        layout = WindowLayout(self.stack.storage_prefix, window_id)
        plan = json.loads(documents.read_text(layout.plan_uri))
        runs = [BatchRun.from_json(documents.read_text(layout.run_uri(b["batch_id"]))) for b in plan["batches"]]
        tasks = task_spans((self.home / f"dags_test_{name}.log").read_text(errors="replace"))
        self.windows[name] = Window(window_id, plan, runs, seconds, tasks)
        return self.windows[name]

    def dags_test(self, dag_id: str, logical_date: datetime, name: str) -> float:
        """Run ``airflow dags test`` of one of the bundle's DAGs on the rehearsal; return how long it took.

        :raises RuntimeError: when the DAG run fails (with the end of its log and of the runner's).
        """
        began = time.monotonic()
        log = self.home / f"dags_test_{name}.log"
        code = dags_test(dag_id, logical_date.isoformat(), self.env, log)
        if code != 0:
            raise RuntimeError(f"dags test of {name} failed ({code}):\n{log.read_text()[-6000:]}\n{self.runner_log()}")
        return round(time.monotonic() - began, 1)

    @property
    def bundle(self) -> Path:
        """Return the copy of the DAG bundle the windows run (its ``config/`` may be edited for a test)."""
        return Path(self.env["AIRFLOW__CORE__DAGS_FOLDER"])

    def runner_log(self) -> str:
        """Return the end of the step runner's log."""
        return "--- runner\n" + (self.stack.home / "runner.log").read_text(errors="replace")[-4000:]
