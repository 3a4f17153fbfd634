"""The Glue hook against moto's Glue on the loopback server, which enforces MaxConcurrentRuns."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from warpspeed.config.glue_job import GlueJobSettings
from warpspeed.embedded.sqs_server import ACCESS_KEY, REGION, SECRET_KEY
from warpspeed.hooks.glue import ConcurrencyAwareGlueJobHook, is_concurrent_runs_exceeded


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
