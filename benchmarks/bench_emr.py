"""EMR control-plane calls for one window: the pool vs a cluster per request (moto in-process).

2,000 requests over 3 workloads are planned into batches with the real planner. The pool
path ensures one cluster per workload (one ListClusters for all of them; a cold cluster is
created with its batches' steps), starts every batch and polls each cluster twice (once while
running, which is the read that finds the steps by name, once after). The baseline gives every request its own cluster:
RunJobFlow, AddJobFlowSteps, two DescribeStep polls, TerminateJobFlows. Both count the EMR
calls the boto3 client actually makes.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
"""This checkout: the benchmark passes the bundle's config and jars explicitly."""
REQUESTS = int(os.environ.get("WARPSPEED_BENCH_EMR_REQUESTS", "2000"))
"""Requests in the window (the size knob: the suite's smoke run uses a few dozen)."""
WORKLOADS = ("scoring", "intent", "upsell")
TENANTS = 600
REGION = "us-east-1"
BUCKET = "bkt-bench-emr"


def _requests() -> list[Any]:
    from warpspeed.intake.schema import ScoringRequest

    rng = random.Random(7)
    start = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
    return [
        ScoringRequest(
            request_id=f"req-{i:05d}",
            tenant_id=f"tenant-{rng.randrange(TENANTS):04d}",
            model=f"model-{rng.randrange(3)}",
            model_version="v1",
            workload=WORKLOADS[i % len(WORKLOADS)],
            requested_at=(start + timedelta(seconds=i)).isoformat(),
            estimated_accounts=rng.randint(500, 20_000),
        )
        for i in range(REQUESTS)
    ]


def _count(client: Any) -> Counter[str]:
    calls: Counter[str] = Counter()

    def on_call(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.emr", on_call)
    return calls


def _finish(cluster_id: str) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.emr.models import emr_backends

    for step in emr_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[cluster_id].steps:
        step.state = "COMPLETED"


def _pool_window(home: str, batches: dict[str, int]) -> tuple[Counter[str], int]:
    import boto3

    from warpspeed.compute.base import SparkJob
    from warpspeed.compute.emr.backend import EmrComputeBackend
    from warpspeed.config.settings import WarpSpeedSettings
    from warpspeed.hooks.aws_retry import retry_config
    from warpspeed.hooks.emr import EmrPoolHook

    settings = WarpSpeedSettings.from_mapping(
        {
            "home": home,
            "storage_prefix": f"s3://{BUCKET}/ws",
            "catalog_type": "glue",
            "warehouse": f"s3://{BUCKET}/warehouse",
            "region": REGION,
            "compute_backend": "emr",
        }
    )
    emr = boto3.client("emr", region_name=REGION, config=retry_config())
    s3 = boto3.client("s3", region_name=REGION)
    backend = EmrComputeBackend(
        settings,
        profiles_file=REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml",
        hook=EmrPoolHook(client=emr, sleep=lambda _s: None),
        s3_client=s3,
    )
    backend.code  # noqa: B018 - stage code first: S3, not EMR, and once per code version
    s3_calls: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3", lambda model, **_: s3_calls.update([model.name]))
    calls = _count(emr)
    jobs = {w: [SparkJob(f"warpspeed-{w}-{i}", "score_batch.py") for i in range(n)] for w, n in batches.items()}
    refs = backend.ensure_clusters({w: ("scoring", jobs[w]) for w in batches})
    for workload, ref in refs.items():
        statuses = backend.start(ref, jobs[workload])  # poll 1: finds the launched steps by name
        assert not all(s.terminal for s in statuses)
        ids = [s.step_id for s in statuses]
        _finish(ref.cluster_id)
        log_uri = backend.hook.log_uri(ref.cluster_id)
        assert all(s.succeeded for s in backend.hook.step_states(ref.cluster_id, ids, log_uri))  # poll 2
    return calls, sum(s3_calls.values())


def _cluster_per_request(requests: int, request: dict[str, Any]) -> Counter[str]:
    import boto3

    emr = boto3.client("emr", region_name=REGION)
    calls = _count(emr)
    for i in range(requests):
        cluster_id = emr.run_job_flow(**(request | {"Name": f"per-request-{i}"}))["JobFlowId"]
        (step_id,) = emr.add_job_flow_steps(
            JobFlowId=cluster_id,
            Steps=[
                {
                    "Name": "score",
                    "ActionOnFailure": "TERMINATE_CLUSTER",
                    "HadoopJarStep": {
                        "Jar": "command-runner.jar",
                        "Args": ["spark-submit", "score_batch.py"],
                    },
                }
            ],
        )["StepIds"]
        emr.describe_step(ClusterId=cluster_id, StepId=step_id)
        _finish(cluster_id)
        emr.describe_step(ClusterId=cluster_id, StepId=step_id)
        emr.terminate_job_flows(JobFlowIds=[cluster_id])
    return calls


def run() -> Iterator[dict]:
    """Count EMR calls for one 2,000-request window both ways."""
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": REGION}
    )
    import boto3
    from moto import mock_aws

    from warpspeed.config.workloads import PlanningSettings
    from warpspeed.planning.batches import plan_window

    requests = _requests()
    planning = {
        w: PlanningSettings(rows_cap=400_000, max_tenants_per_batch=40, max_batches_per_window=40)
        for w in WORKLOADS
    }
    plan = plan_window("20261120T2100Z", requests, planning)
    batches = Counter(b.workload for b in plan.batches)
    tenants = len({r.tenant_id for r in requests})
    with mock_aws(), tempfile.TemporaryDirectory() as home:
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        pool, lease_calls = _pool_window(home, dict(batches))
        from warpspeed.compute.emr.request import build_run_job_flow_request
        from warpspeed.config.catalog import CatalogConfig
        from warpspeed.config.profile_catalog import ProfileCatalog
        profile = ProfileCatalog.load(REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml")["scoring"]
        request = build_run_job_flow_request(
            profile,
            "scoring",
            catalog=CatalogConfig(kind="glue", warehouse=f"s3://{BUCKET}/wh"),
            variables={"storage_prefix": f"s3://{BUCKET}/ws"},
        )
        naive = _cluster_per_request(REQUESTS, request)
    pool_total = sum(pool.values())
    detail = ", ".join(f"{k} {v}" for k, v in sorted(pool.items()))
    yield {
        "name": "emr_calls_per_window",
        "value": pool_total,
        "unit": "calls",
        "note": f"{REQUESTS} requests, {tenants} tenants, {len(WORKLOADS)} workloads -> "
        f"{sum(batches.values())} batches ({dict(sorted(batches.items()))}), "
        f"{len(plan.carried_over)} carried over, {len(plan.superseded)} superseded; cold pool "
        f"(creates 3 clusters), 2 polls per cluster: {detail}; "
        f"plus {lease_calls} S3 calls for the leases and the pool registry",
    }
    yield {
        "name": "emr_calls_cluster_per_request",
        "value": sum(naive.values()),
        "unit": "calls",
        "note": f"same {REQUESTS} requests, one cluster each (RunJobFlow, AddJobFlowSteps, 2 DescribeStep "
        f"polls, TerminateJobFlows): " + ", ".join(f"{k} {v}" for k, v in sorted(naive.items())),
    }
