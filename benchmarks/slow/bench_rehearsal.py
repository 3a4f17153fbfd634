"""rehearsal_window_seconds and rehearsal_vs_local_window: one window on the EMR path vs the local warm engine.

``make bench-rehearsal`` (``benchmarks/run.py --slow``): minutes, a rehearsal of its own; not in ``make bench``.

Starts the rehearsal (S3Proxy, the EMR and Glue control planes, a Spark standalone master with two
workers), seeds it, and runs ``airflow dags test warpspeed_scoring`` for two closed windows of the
same shape: a Spark batch (``scoring``: one tenant, an expression and an MLflow model) and a Python
step (``intent``: one tenant on the single-node engine). The first window creates the clusters
(bootstrap included), the second reuses them: that one is ``rehearsal_window_seconds``. The same
batches then run on the local backend (the warm local Spark engine, started for them; the
single-node engine in process): ``rehearsal_vs_local_window`` is the rehearsed window over that
run. Every figure carries its phases: start-up, cluster creation, each step's own run, how long
after its end the task noticed it (the deferred trigger polls 30 s after the submission, then
1.5x longer each time), each task's span in the ``dags test`` log (one task at a time there: the
mapped score tasks run one after the other, not side by side as under a scheduler), and what the
EMR path adds around the slowest step.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded import seed
from warpspeed.embedded.postgres import embedded_postgres
from warpspeed.embedded.rehearsal.compare import compare_scores, score_locally, window_scores
from warpspeed.embedded.rehearsal.data import seed_stack
from warpspeed.embedded.rehearsal.stack import REGION, RehearsalStack
from warpspeed.embedded.rehearsal.windows import DagWindows, Window, closed_window
from warpspeed.embedded.sqs_server import local_sqs

TENANTS = seed.tenant_ids(2)
ACCOUNTS = (2000, 1000)
REQUESTS = [(TENANTS[0], "churn_risk", "scoring"), (TENANTS[0], "upsell_propensity", "scoring"),
            (TENANTS[1], "intent_surge", "intent")]


def _steps(stack: RehearsalStack, window: Window) -> dict[str, float]:
    """Return, by engine, each step's own run time (seconds the runner saw it run) for the window's batches,
    and how long after the step ended its score task ended (the trigger's next poll, then the task's resumption).
    """
    emr = boto3.client("emr", endpoint_url=stack.control_plane, region_name=REGION, aws_access_key_id="x",
                       aws_secret_access_key="x")
    names = {f"warpspeed-{b['batch_id']}": b["engine"] for b in window.plan["batches"]}
    scores = [span for task, span in window.tasks.items() if task.startswith("score_batches")]
    found: dict[str, float] = {}
    for step in stack.steps():
        listed = emr.describe_step(ClusterId=step.cluster_id, StepId=step.step_id)["Step"]
        engine = names.get(listed["Name"])
        if engine and step.result:
            found[f"{engine}_step"] = float(step.result["seconds"])
            timeline = listed["Status"]["Timeline"]
            task_end = next((end for start, end in scores if start <= timeline["CreationDateTime"] <= end), None)
            if task_end is not None and timeline.get("EndDateTime"):
                found[f"{engine}_step_end_to_task_end"] = round((task_end - timeline["EndDateTime"]).total_seconds(), 1)
    return found


def _task_seconds(window: Window) -> dict[str, float]:
    """Return each task's span in the window's ``dags test`` log, in seconds."""
    return {task: round((end - start).total_seconds(), 1) for task, (start, end) in window.tasks.items()}


def _cluster_ready_seconds(stack: RehearsalStack) -> float:
    """Return the longest creation -> ready time of the rehearsal's clusters (the bootstrap included)."""
    emr = boto3.client("emr", endpoint_url=stack.control_plane, region_name=REGION, aws_access_key_id="x",
                       aws_secret_access_key="x")
    spans = []
    for summary in emr.list_clusters()["Clusters"]:
        timeline = emr.describe_cluster(ClusterId=summary["Id"])["Cluster"]["Status"]["Timeline"]
        if timeline.get("ReadyDateTime"):
            spans.append((timeline["ReadyDateTime"] - timeline["CreationDateTime"]).total_seconds())
    return round(max(spans, default=0.0), 1)


def _requests() -> list[tuple[str, str, str, int]]:
    return [(t, m, w, seed.accounts_for(TENANTS.index(t), *ACCOUNTS)) for t, m, w in REQUESTS]


def run() -> Iterator[dict[str, Any]]:
    jars = WarpSpeedSettings.from_mapping({}).jars_dir
    with tempfile.TemporaryDirectory(prefix="warpspeed-bench-rehearsal-") as tmp:
        home = Path(tmp)
        began = time.monotonic()
        with RehearsalStack(home / "emr", jars) as stack, local_sqs(jars) as sqs, \
                embedded_postgres(home / "pg") as pg:
            up = round(time.monotonic() - began, 1)
            settings = seed_stack(stack, TENANTS, ACCOUNTS)
            dags = DagWindows.prepare(stack, sqs, home, pg.sqlalchemy_url(pg.create_database("airflow")))
            cold = dags.run("cold", closed_window(1), _requests())
            ready = _cluster_ready_seconds(stack)
            warm = dags.run("warm", closed_window(), _requests())
            steps = _steps(stack, warm)
            local = score_locally(stack, settings, warm.window_id, home / "local")
            same = not compare_scores(window_scores(settings, warm.batch_ids), local.scores) and not local.failed
    load = os.getloadavg()[0]
    slowest = max((v for k, v in steps.items() if k.endswith("_step")), default=0.0)
    phases = {"rehearsal_start": up, "cluster_create_to_ready": ready, **steps,
              "window_minus_slowest_step": round(warm.seconds - slowest, 1), **local.phases,
              "tasks": _task_seconds(warm)}
    yield {
        "name": "rehearsal_window_seconds",
        "value": warm.seconds,
        "unit": "s",
        "note": f"airflow dags test of one window through the EMR backend on the rehearsal, clusters reused "
                f"(1 Spark batch of {_requests()[0][3]} accounts x 2 models, 1 Python step); the window that "
                f"created them took {cold.seconds} s; phases (s) {json.dumps(phases, sort_keys=True)}; load "
                f"average {load:.1f} on {os.cpu_count()} cores",
    }
    yield {
        "name": "rehearsal_vs_local_window",
        "value": round(warm.seconds / local.seconds, 2) if local.seconds else float("nan"),
        "unit": "x",
        "note": f"the same batches on the local backend, one after the other: {local.seconds:.1f} s, the warm "
                f"engine's start included (a local backend's first window); scores equal row for row: {same}; "
                f"measured {datetime.now():%Y-%m-%d %H:%M}, load average {load:.1f}",
    }
