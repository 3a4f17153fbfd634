"""EMR pool against moto's in-process EMR and S3: reuse vs create, leases, steps, throttling, call bounds.

moto keeps steps PENDING/RUNNING forever: ``tests/unit/emr_support.py`` plays the cluster
(:func:`finish_steps`) and adds the failure details moto does not model.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from tests.unit.emr_support import (
    BUCKET,
    PROFILES,
    REGION,
    Calls,
    active_clusters,
    emr_settings,
    failure_details,
    finish_steps,
    jobs,
    make_backend,
    moto_cluster,
)
from tests.unit.pool_race_support import NoLease, race
from warpspeed.compute.base import StepStatus
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.compute.emr.lease import FileLease, S3Lease
from warpspeed.compute.emr.request import request_hash
from warpspeed.compute.emr.steps import ON_DEMAND_RETRY_SUFFIX, spark_step
from warpspeed.compute.factory import compute_backend_for
from warpspeed.config.cluster_profiles import ACTIVE_CLUSTER_STATES, TAG_PROFILE_HASH
from warpspeed.hooks.aws_retry import next_poll_delay, retry_config
from warpspeed.hooks.emr import EmrPoolHook
from warpspeed.storage.documents import LocalStorage

pytestmark = pytest.mark.usefixtures("aws_env")


# -- spin or reuse --------------------------------------------------------------------------
def test_create_then_reuse_then_new_cluster_for_changed_profile(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    first = backend.ensure_cluster("scoring", "scoring")
    assert first.created and first.backend == "emr"
    described = backend.hook.emr.describe_cluster(ClusterId=first.cluster_id)["Cluster"]
    request = backend.request_for("scoring", "scoring")
    # The request round-trips through RunJobFlow.
    assert described["Name"] == request["Name"]
    assert described["ReleaseLabel"] == "emr-7.14.0"
    assert described["StepConcurrencyLevel"] == 10
    assert described["LogUri"] == f"s3://{BUCKET}/warpspeed/emr-logs/"
    assert {t["Key"]: t["Value"] for t in described["Tags"]}[TAG_PROFILE_HASH] == request_hash(request)
    assert described["Configurations"] == request["Configurations"]

    again = make_backend(tmp_path).ensure_cluster("scoring", "scoring")
    assert (again.cluster_id, again.created) == (first.cluster_id, False)
    # Another workload on the same profile gets its own cluster.
    intent = make_backend(tmp_path).ensure_cluster("intent", "scoring")
    assert intent.created and intent.cluster_id != first.cluster_id

    changed = make_backend(tmp_path)
    changed.profiles.profiles["scoring"].spark_defaults["spark.sql.shuffle.partitions"] = "400"  # type: ignore[index]
    fresh = changed.ensure_cluster("scoring", "scoring")
    assert fresh.created and fresh.cluster_id != first.cluster_id
    # And the stale cluster is never picked again, even when the registry is lost.
    backend.storage.write_text(changed.registry_uri("scoring"), "{}")
    assert changed.ensure_cluster("scoring", "scoring").cluster_id == fresh.cluster_id


def test_lookup_ignores_terminated_and_mistagged_clusters(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    first = backend.ensure_cluster("scoring", "scoring")
    emr = backend.hook.emr
    emr.terminate_job_flows(JobFlowIds=[first.cluster_id])
    second = make_backend(tmp_path).ensure_cluster("scoring", "scoring")
    assert second.created and second.cluster_id != first.cluster_id
    # Someone retagged the live cluster: it no longer proves its profile, so it is not reused.
    emr.add_tags(ResourceId=second.cluster_id, Tags=[{"Key": TAG_PROFILE_HASH, "Value": "0" * 12}])
    third = make_backend(tmp_path).ensure_cluster("scoring", "scoring")
    assert third.created and third.cluster_id not in (first.cluster_id, second.cluster_id)
    assert moto_cluster(third.cluster_id).state in ACTIVE_CLUSTER_STATES


def test_full_cluster_is_not_reused(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster_for("scoring", "scoring", 200)
    backend.submit_jobs(ref, jobs(200))
    other = make_backend(tmp_path).ensure_cluster_for("scoring", "scoring", 100)
    assert other.created and other.cluster_id != ref.cluster_id
    assert make_backend(tmp_path).ensure_cluster_for("scoring", "scoring", 56).cluster_id in (
        ref.cluster_id,
        other.cluster_id,
    )


def test_ten_concurrent_callers_create_one_cluster_with_the_s3_lease(tmp_path: Path) -> None:
    refs = race(tmp_path, 10, None)  # the backend's own lease: S3 conditional writes
    assert len({r.cluster_id for r in refs}) == 1
    assert sum(r.created for r in refs) == 1
    assert len(active_clusters()) == 1


def test_ten_concurrent_callers_create_one_cluster_with_the_file_lease(tmp_path: Path) -> None:
    refs = race(tmp_path, 10, lambda: FileLease(tmp_path / "locks"))
    assert len({r.cluster_id for r in refs}) == 1 and sum(r.created for r in refs) == 1


def test_without_a_lease_the_race_creates_duplicates(tmp_path: Path) -> None:
    """The control: the same race with no lease does create several clusters."""
    # a wide window: every caller lists before the first RunJobFlow lands, however threads are scheduled
    refs = race(tmp_path, 10, NoLease, delay=0.5)
    assert sum(r.created for r in refs) > 1


def test_s3_lease_expiry_takeover_and_release(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    holder = S3Lease(s3, f"s3://{BUCKET}/locks", ttl_seconds=60, wait_seconds=0.3, sleep=lambda _s: None)
    waiter = S3Lease(s3, f"s3://{BUCKET}/locks", ttl_seconds=60, wait_seconds=0.3, sleep=lambda _s: None)
    late = S3Lease(
        s3, f"s3://{BUCKET}/locks", ttl_seconds=60, wait_seconds=5, clock=lambda: now + timedelta(seconds=120)
    )
    held = holder.hold("w")
    held.__enter__()
    with pytest.raises(Exception, match="timed out"), waiter.hold("w"):
        pass
    with late.hold("w"):  # the holder's lease has expired for this clock: taken over by CAS
        body = json.loads(s3.get_object(Bucket=BUCKET, Key="locks/w.lease")["Body"].read())
        assert body["owner"] == late.owner
        held.__exit__(None, None, None)  # the old holder's release must not delete the new lease
        assert s3.get_object(Bucket=BUCKET, Key="locks/w.lease")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=BUCKET, Key="locks/w.lease")


# -- steps ----------------------------------------------------------------------------------
def test_steps_go_in_bulk_and_poll_once_per_cluster(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster_for("scoring", "scoring", 40)
    calls = Calls(backend.hook.emr)
    ids = backend.submit_jobs(ref, jobs(40))
    assert len(ids) == len(set(ids)) == 40
    assert calls.logical["AddJobFlowSteps"] == 1
    step = backend.hook.emr.describe_step(ClusterId=ref.cluster_id, StepId=ids[0])["Step"]
    args = step["Config"]["Args"]
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert args[-4:] == ["--batch-manifest", f"s3://{BUCKET}/m/0.json", "--catalog", "warpspeed"]
    assert args[-5].startswith(f"s3://{BUCKET}/warpspeed/code/") and args[-5].endswith("/score_batch.py")
    assert step["ActionOnFailure"] == "CONTINUE"
    code = backend.code
    assert boto3.client("s3").head_object(Bucket=BUCKET, Key=code.py_files.split(BUCKET + "/")[1])

    before = calls.total
    pending = backend.hook.step_states(ref.cluster_id, ids)
    assert {s.state for s in pending} <= {"PENDING", "RUNNING"} and calls.total - before == 1
    finish_steps(ref.cluster_id)
    assert all(s.succeeded for s in backend.hook.step_states(ref.cluster_id, ids))


def test_resubmission_adopts_steps_in_flight(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster("scoring", "scoring")
    first = backend.submit_jobs(ref, jobs(5))
    again = make_backend(tmp_path).submit_jobs(ref, jobs(6))
    assert again[:5] == first and again[5] not in first
    assert len(moto_cluster(ref.cluster_id).steps) == 6


def test_more_than_256_steps_take_two_calls(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster("scoring", "scoring")
    calls = Calls(backend.hook.emr)
    backend.hook.add_steps(ref.cluster_id, [spark_step(j, backend.code) for j in jobs(300)])
    assert calls.logical["AddJobFlowSteps"] == 2


def test_failed_step_reports_reason_and_log_and_spot_loss_is_retried_once_on_demand(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster("scoring", "scoring")
    emr = backend.hook.emr
    ids = backend.submit_jobs(ref, jobs(3))
    failure_details(
        emr,
        {
            ids[1]: {
                "Reason": "Spark application failed",
                "Message": "ExecutorLostFailure: Container released on a *lost* node (Spot interruption)",
                "LogFile": f"s3://{BUCKET}/warpspeed/emr-logs/{ref.cluster_id}/steps/{ids[1]}/stderr.gz",
            },
            ids[2]: {"Reason": "Python exception", "Message": "KeyError: 'tenant_id'"},
        },
    )
    finish_steps(ref.cluster_id, {ids[1]: "FAILED", ids[2]: "FAILED"})
    log_uri = backend.hook.log_uri(ref.cluster_id)
    states = backend.hook.step_states(ref.cluster_id, ids, log_uri)
    assert [s.lost_to_spot for s in states] == [False, True, False]
    assert states[2].log_file == f"s3://{BUCKET}/warpspeed/emr-logs/{ref.cluster_id}/steps/{ids[2]}/"
    assert states[1].log_file.endswith("stderr.gz")

    # run_jobs: the Spot-lost step reruns once with on-demand node labels; the bug does not.
    ids2: list[str] = []
    original_add = backend.hook.add_steps

    def add_and_play(cluster_id: str, steps: Any) -> list[str]:
        new = original_add(cluster_id, steps)
        ids2.extend(new)
        if len(ids2) == 3:  # first submission: same fate as above
            failure_details(
                emr,
                {
                    new[1]: {"Reason": "Lost", "Message": "Spot instance terminated"},
                    new[2]: {"Reason": "Python exception", "Message": "KeyError"},
                },
            )
            finish_steps(cluster_id, {new[1]: "FAILED", new[2]: "FAILED"})
        else:
            finish_steps(cluster_id)
        return new

    backend.hook.add_steps = add_and_play  # type: ignore[method-assign]
    outcomes = backend.run_jobs(ref, jobs(3, prefix="r"))
    assert [o.state for o in outcomes] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert "KeyError" in (outcomes[2].reason or "") and outcomes[2].log_uri
    assert len(ids2) == 4
    retry = emr.describe_step(ClusterId=ref.cluster_id, StepId=ids2[3])["Step"]
    assert retry["Name"].endswith(ON_DEMAND_RETRY_SUFFIX)
    assert "spark.yarn.executor.nodeLabelExpression=ON_DEMAND" in retry["Config"]["Args"]


def test_step_status_json_round_trip() -> None:
    status = StepStatus("s-1", "warpspeed-b1", "FAILED", "r", "m", "s3://x/y/")
    assert StepStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status
    assert StepStatus("s-2", "n", "INTERRUPTED").lost_to_spot
    assert not StepStatus("s-3", "n", "FAILED", "Python exception", "ValueError").lost_to_spot


def test_poll_delay_grows_with_jitter_and_cap() -> None:
    delays = [next_poll_delay(n, 30, 300) for n in range(12)]
    assert 24 <= delays[0] <= 36 and all(d <= 360 for d in delays) and delays[-1] >= 240
    assert len({round(next_poll_delay(0, 30, 300), 6) for _ in range(20)}) > 1


# -- throttling and call bounds -------------------------------------------------------------
def throttle_half(client: Any) -> Counter[str]:
    """Throttle attempts 1 and 2 of every 4: exactly half of all HTTP attempts fail."""
    seen: Counter[str] = Counter()

    def send(request: Any, **_: Any) -> AWSResponse | None:
        seen["attempts"] += 1
        if seen["attempts"] % 4 in (1, 2):
            seen["throttled"] += 1
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return AWSResponse(
                request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, MockRawResponse(body)
            )
        return None

    client.meta.events.register_first("before-send.emr", send)
    return seen


def run_window(backend: EmrComputeBackend, batches: dict[str, int], tag: str) -> dict[str, list[str]]:
    """Ensure, submit, let the cluster finish, poll: what one window does per workload."""
    finished: dict[str, list[str]] = {}
    for workload, n in batches.items():
        ref = backend.ensure_cluster_for(workload, "scoring", n)
        ids = backend.submit_jobs(ref, jobs(n, prefix=f"{tag}-{workload}-"))
        log_uri = backend.hook.log_uri(ref.cluster_id)
        assert not all(s.terminal for s in backend.hook.step_states(ref.cluster_id, ids, log_uri))
        finish_steps(ref.cluster_id)
        states = backend.hook.step_states(ref.cluster_id, ids, log_uri)
        assert all(s.succeeded for s in states)
        finished[workload] = ids
    return finished


def window_bound(batches: dict[str, int], polls: int = 2) -> int:
    """Most EMR calls a window may take: O(workloads), independent of tenants."""
    per_workload = [
        # ensure: registry hint DescribeCluster + ListSteps(capacity), else ListClusters + Describe +
        # ListSteps, + RunJobFlow; submit: ListSteps(adopt) + AddJobFlowSteps/256; log URI: <= 1.
        6 + math.ceil(n / 256) + 1 + polls * math.ceil(n / 50)
        for n in batches.values()
    ]
    return sum(per_workload)


def test_window_succeeds_with_half_of_all_calls_throttled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.endpoint

    monkeypatch.setattr(botocore.endpoint.time, "sleep", lambda _s: None)  # botocore's own retry waits
    backend = make_backend(tmp_path, config=retry_config("standard", max_attempts=2), backoff_attempts=8)
    calls = Calls(backend.hook.emr)
    throttled = throttle_half(backend.hook.emr)
    batches = {"scoring": 40, "intent": 20, "upsell": 7}
    done = run_window(backend, batches, "w1")
    assert sum(len(v) for v in done.values()) == 67
    assert throttled["attempts"] - 1 <= 2 * throttled["throttled"] <= throttled["attempts"] + 1
    assert backend.hook.throttled > 0  # the hook's own backoff ran, not only botocore's
    assert calls.total <= window_bound(batches)
    assert len(active_clusters()) == 3


def test_calls_per_window_are_bounded_by_workloads_not_tenants(tmp_path: Path) -> None:
    small = {"scoring": 2, "intent": 1}
    cold = make_backend(tmp_path)
    cold_calls = Calls(cold.hook.emr)
    run_window(cold, small, "cold")
    assert cold_calls.logical["RunJobFlow"] == 2
    assert cold_calls.total <= window_bound(small)

    def warm_window(batches: dict[str, int], tag: str) -> Calls:
        backend = make_backend(tmp_path)  # a new task: nothing cached
        calls = Calls(backend.hook.emr)
        run_window(backend, batches, tag)
        return calls

    few = warm_window(small, "few")
    many = warm_window({"scoring": 40, "intent": 20}, "many")  # 20x the batches (and tenants)
    assert few.logical["RunJobFlow"] == many.logical["RunJobFlow"] == 0
    assert many.total <= window_bound({"scoring": 40, "intent": 20})
    assert many.total == few.total, (few.logical, many.logical)


def test_backend_is_selected_by_settings(tmp_path: Path) -> None:
    backend = compute_backend_for(emr_settings(tmp_path), str(PROFILES))
    assert isinstance(backend, EmrComputeBackend) and backend.asynchronous
    client = EmrPoolHook(aws_conn_id=None, region_name=REGION).conn
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 8}


def test_hook_level_file_lease_with_local_registry(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    request = backend.request_for("maint", "maintenance")
    registry = LocalStorage()
    uri = str(tmp_path / "pool" / "maint.json")
    hook = backend.pool  # spin-or-reuse moved from the client hook to the cluster pool
    first = hook.ensure_cluster(
        "maint", request, lease=FileLease(tmp_path / "l"), registry=registry, registry_uri=uri
    )
    second = hook.ensure_cluster(
        "maint", request, lease=FileLease(tmp_path / "l"), registry=registry, registry_uri=uri
    )
    assert first.created and not second.created and first.cluster_id == second.cluster_id
    assert json.loads(registry.read_text(uri))["cluster_id"] == first.cluster_id
