"""The Glue hook and the Glue preprocessing task against moto's Glue server, which enforces MaxConcurrentRuns."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from airflow.sdk.exceptions import TaskDeferred
from botocore.exceptions import ClientError

from tests.glue_support import GLUE_CATALOG, operator, settings
from warpspeed.config.glue_job import GlueJobSettings
from warpspeed.embedded.sqs_server import ACCESS_KEY, REGION, SECRET_KEY
from warpspeed.hooks.glue import ConcurrencyAwareGlueJobHook, is_concurrent_runs_exceeded
from warpspeed.preprocessing.service import FeatureRefreshService


def _moto_job_run_transition(endpoint: str, transition: dict[str, object] | None) -> None:
    """Tell moto how Glue job runs progress (``None``: back to its default)."""
    import urllib.request

    action, body = ("set-transition", {"model_name": "glue::job_run", "transition": transition}) if transition \
        else ("unset-transition", {"model_name": "glue::job_run"})
    request = urllib.request.Request(f"{endpoint}/moto-api/state-manager/{action}", method="POST",
                                     data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


@pytest.fixture
def moto_glue(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the ``moto_glue`` connection at the loopback moto server (its Glue enforces MaxConcurrentRuns)."""
    monkeypatch.setenv("AIRFLOW_CONN_MOTO_GLUE", json.dumps({
        "conn_type": "aws", "login": ACCESS_KEY, "password": SECRET_KEY,
        "extra": {"endpoint_url": moto_endpoint, "region_name": REGION}}))
    yield moto_endpoint
    _moto_job_run_transition(moto_endpoint, None)


def _glue_hook(job_name: str, attempts: int, initial: float, *, update: bool = True) -> ConcurrencyAwareGlueJobHook:
    # moto implements CreateJob but not UpdateJob: starts on an existing job use get-or-create
    glue = GlueJobSettings(script_bucket="bucket")
    return ConcurrencyAwareGlueJobHook(
        job_name=job_name, desc="features refresh", script_location="s3://bucket/warpspeed/glue/build_features.py",
        iam_role_arn="arn:aws:iam::123456789012:role/glue",
        create_job_kwargs=glue.create_job_kwargs({"spark.sql.catalog.warpspeed.type": "glue"}),
        update_config=update, aws_conn_id="moto_glue", region_name=REGION,
        concurrency_retry_initial_seconds=initial, concurrency_retry_max_seconds=initial * 4,
        concurrency_retry_max_attempts=attempts)


def _count_starts(hook: ConcurrencyAwareGlueJobHook, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    original = hook.conn.start_job_run

    def counting_start(**kwargs: object) -> object:
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(hook.conn, "start_job_run", counting_start)
    return calls


def test_glue_hook_creates_a_glue5_job_and_gives_up_after_max_attempts(
    moto_glue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _moto_job_run_transition(moto_glue, {"progression": "manual", "times": 10_000})  # runs never finish
    name = f"wf-{uuid.uuid4().hex[:8]}"
    first = _glue_hook(name, attempts=3, initial=0.01)
    run = first.initialize_job({"--plan-uri": "s3://bucket/plan.json"})
    job = first.conn.get_job(JobName=name)["Job"]
    assert job["GlueVersion"] == "5.0" and job["DefaultArguments"]["--datalake-formats"] == "iceberg"
    assert job["ExecutionProperty"]["MaxConcurrentRuns"] == 1 and job["WorkerType"] == "G.1X"
    assert first.conn.get_job_run(JobName=name, RunId=run["JobRunId"])["JobRun"]["Arguments"][
        "--plan-uri"] == "s3://bucket/plan.json"

    second = _glue_hook(name, attempts=3, initial=0.01, update=False)
    calls = _count_starts(second, monkeypatch)
    with pytest.raises(Exception) as info:
        second.initialize_job({"--plan-uri": "s3://bucket/plan2.json"})
    assert is_concurrent_runs_exceeded(info.value)
    assert len(calls) == 3 and len(second.concurrency_waits) == 2


def test_glue_hook_start_gets_through_once_the_running_job_ends(
    moto_glue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _moto_job_run_transition(moto_glue, {"progression": "time", "seconds": 2})  # STARTING 2 s, RUNNING 2 s
    name = f"wf-{uuid.uuid4().hex[:8]}"
    _glue_hook(name, attempts=3, initial=0.01).initialize_job({"--plan-uri": "s3://bucket/a.json"})
    second = _glue_hook(name, attempts=12, initial=0.5, update=False)
    calls = _count_starts(second, monkeypatch)
    run = second.initialize_job({"--plan-uri": "s3://bucket/b.json"})
    assert run["JobRunId"]
    assert len(second.concurrency_waits) >= 1, "the first start should have been refused"
    assert len(calls) == len(second.concurrency_waits) + 1
    assert second.concurrency_waits[0] >= 0.5  # exponential backoff from the initial wait (plus jitter)


class _TI:
    dag_id, task_id, run_id, map_index, try_number = "d", "build_features_glue", "r", -1, 1

    def xcom_push(self, **_kw: Any) -> None:
        pass


@pytest.mark.usefixtures("moto_glue")
def test_concurrent_runs_exceeded_defers_between_starts_instead_of_sleeping_in_the_worker(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 7: the ConcurrentRunsExceeded backoff ran inside initialize_job, before defer(), holding a worker."""
    _moto_job_run_transition(moto_endpoint, {"progression": "manual", "times": 10_000})  # runs never finish
    name = f"wf-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="bucket")
    _glue_hook(name, attempts=1, initial=0.01).initialize_job({"--plan-uri": "s3://bucket/first.json"})
    config = tmp_path / "preprocessing.yaml"
    config.write_text(json.dumps({"glue": {
        "job_name": name, "script_bucket": "bucket", "iam_role_arn": "arn:aws:iam::123456789012:role/glue",
        "concurrency_retry_initial_seconds": 0.01, "concurrency_retry_max_seconds": 0.04,
        "concurrency_retry_max_attempts": 3}}), encoding="utf-8")
    monkeypatch.setattr(FeatureRefreshService, "ensure_tables", lambda self: None)
    monkeypatch.setattr(FeatureRefreshService, "upload_artifacts", lambda self, glue, s3: "s3://bucket/zip")
    # moto implements CreateJob but not UpdateJob: the job exists, so take it as it is
    monkeypatch.setattr(ConcurrencyAwareGlueJobHook, "create_or_update_glue_job",
                        ConcurrencyAwareGlueJobHook.get_or_create_glue_job)
    ws = settings(GLUE_CATALOG, tmp_path, "moto_glue")
    op = operator(config, ws, deferrable=True)
    context: Any = {"ti": _TI()}
    op.configure(GlueJobSettings.load(config), ws)
    starts = _count_starts(op.hook, monkeypatch)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    assert len(starts) == 1, "a refused start must not be retried in the worker"
    assert type(deferred.value.trigger).__name__ == "TimeDeltaTrigger"
    assert deferred.value.method_name == "start_again" and deferred.value.kwargs == {"attempt": 2}

    again = operator(config, ws, deferrable=True)  # a resumed task is a new instance
    again.configure(GlueJobSettings.load(config), ws)
    more = _count_starts(again.hook, monkeypatch)
    with pytest.raises(TaskDeferred) as deferred:
        again.start_again(context, None, attempt=2)
    assert len(more) == 1 and deferred.value.kwargs == {"attempt": 3}
    with pytest.raises(ClientError) as refused:
        again.start_again(context, None, attempt=3)  # the last start: the task's own retries take over
    assert is_concurrent_runs_exceeded(refused.value) and len(more) == 2
