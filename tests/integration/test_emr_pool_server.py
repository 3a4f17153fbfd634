"""HTTP contract of the EMR pool against the loopback moto server (EMR + S3 over the wire).

The same boto3 code as production talks JSON over HTTP to moto: the RunJobFlow request
round-trips, tags and lookup work, reuse vs create decisions are right, and the S3 lease's
conditional writes hold over the real protocol.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.paths import REPO_ROOT
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.compute.emr.lease import S3Lease
from warpspeed.compute.emr.request import request_hash
from warpspeed.config.cluster_profiles import ACTIVE_CLUSTER_STATES, TAG_PROFILE_HASH, TAG_WORKLOAD
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.sqs_server import ACCESS_KEY, REGION, SECRET_KEY
from warpspeed.hooks.aws_retry import retry_config
from warpspeed.hooks.emr import EmrPoolHook

pytestmark = pytest.mark.integration
PROFILES = REPO_ROOT / "dags" / "config" / "cluster_profiles.yaml"


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=retry_config("standard", 3) if service == "emr" else None,
    )


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"bkt-emr-{uuid.uuid4().hex[:10]}"
    client(moto_endpoint, "s3").create_bucket(Bucket=name)
    return name


def backend(endpoint: str, bucket: str, tmp_path: Path) -> EmrComputeBackend:
    settings = WarpSpeedSettings.from_mapping(
        {
            "home": str(tmp_path),
            "storage_prefix": f"s3://{bucket}/ws",
            "catalog_type": "glue",
            "warehouse": f"s3://{bucket}/warehouse",
            "region": REGION,
            "compute_backend": "emr",
        }
    )
    hook = EmrPoolHook(client=client(endpoint, "emr"), sleep=lambda _s: None)
    return EmrComputeBackend(settings, profiles_file=PROFILES, hook=hook, s3_client=client(endpoint, "s3"))


def test_run_job_flow_round_trips_and_reuse_over_http(moto_endpoint: str, bucket: str, tmp_path: Path) -> None:
    workload = f"wl{uuid.uuid4().hex[:8]}"
    pool = backend(moto_endpoint, bucket, tmp_path)
    request = pool.request_for(workload, "scoring")
    created = pool.ensure_cluster(workload, "scoring")
    assert created.created
    emr = client(moto_endpoint, "emr")
    cluster = emr.describe_cluster(ClusterId=created.cluster_id)["Cluster"]
    assert cluster["Name"] == request["Name"]
    assert cluster["ReleaseLabel"] == request["ReleaseLabel"]
    assert cluster["LogUri"] == request["LogUri"]
    assert cluster["StepConcurrencyLevel"] == request["StepConcurrencyLevel"]
    assert cluster["Configurations"] == request["Configurations"]
    assert sorted(a["Name"] for a in cluster["Applications"]) == sorted(
        a["Name"] for a in request["Applications"]
    )
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert tags[TAG_WORKLOAD] == workload and tags[TAG_PROFILE_HASH] == request_hash(request)
    listed = [
        c
        for c in emr.list_clusters(ClusterStates=list(ACTIVE_CLUSTER_STATES))["Clusters"]
        if c["Name"] == request["Name"]
    ]
    assert [c["Id"] for c in listed] == [created.cluster_id]

    # A new task (no cached state) reuses it; a profile change creates a new one.
    again = backend(moto_endpoint, bucket, tmp_path).ensure_cluster(workload, "scoring")
    assert (again.cluster_id, again.created) == (created.cluster_id, False)
    changed = backend(moto_endpoint, bucket, tmp_path)
    changed.profiles.profiles["scoring"].tags["owner"] = "someone-else"  # type: ignore[index]
    fresh = changed.ensure_cluster(workload, "scoring")
    assert fresh.created and fresh.cluster_id != created.cluster_id

    ids = pool.submit_jobs(again, _jobs(3))
    states = pool.hook.step_states(again.cluster_id, ids, pool.hook.log_uri(again.cluster_id))
    assert [s.step_id for s in states] == ids
    assert all(
        s.log_file and s.log_file.startswith(f"s3://{bucket}/ws/emr-logs/{again.cluster_id}/steps/")
        for s in states
    )


def test_concurrent_callers_over_http_create_one_cluster(
    moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    workload = f"wl{uuid.uuid4().hex[:8]}"

    def call(_: int) -> Any:
        return backend(moto_endpoint, bucket, tmp_path).ensure_cluster(workload, "maintenance")

    with ThreadPoolExecutor(10) as pool:
        refs = list(pool.map(call, range(10)))
    assert len({r.cluster_id for r in refs}) == 1 and sum(r.created for r in refs) == 1


def test_s3_lease_conditional_writes_over_http(moto_endpoint: str, bucket: str) -> None:
    s3 = client(moto_endpoint, "s3")
    first = S3Lease(s3, f"s3://{bucket}/locks", wait_seconds=0.2, sleep=lambda _s: None)
    second = S3Lease(s3, f"s3://{bucket}/locks", wait_seconds=0.2, sleep=lambda _s: None)
    with first.hold("w"), pytest.raises(Exception, match="timed out"), second.hold("w"):
        pass
    with second.hold("w"):
        pass


def _jobs(n: int) -> list[Any]:
    from warpspeed.compute.base import SparkJob

    return [
        SparkJob(name=f"warpspeed-h{i}", script="score_batch.py", args=("--batch-manifest", f"s3://x/{i}"))
        for i in range(n)
    ]
