"""EMR steps trigger and the deferrable path of ScoreBatchesOperator (moto in-process)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.module_loading import import_string

from tests.paths import BUNDLE_CONFIG, DAGS
from tests.unit.deferred_task_support import WINDOW_START, FakeTI, score_operator, trigger_event, write_manifests
from tests.unit.emr_support import BUCKET, failure_details, finish_steps, jobs, make_backend
from warpspeed.exceptions import ComputeError
from warpspeed.links.emr import EmrPoolSparkHistoryLink, EmrPoolStepLogsLink, step_logs_prefix
from warpspeed.operators.clusters import EnsureClustersOperator
from warpspeed.operators.score import ScoreBatchesOperator
from warpspeed.triggers.emr import EmrStepsTrigger
from warpspeed.window.manifests import BatchRun, WindowLayout, window_id_for

pytestmark = pytest.mark.usefixtures("aws_env")


def test_trigger_serialize_round_trips() -> None:
    trigger = EmrStepsTrigger(
        cluster_id="j-1",
        step_ids=["s-1", "s-2"],
        aws_conn_id="aws_x",
        region_name="eu-west-1",
        log_uri="s3://b/logs/",
        poll_interval=5,
        max_poll_interval=60,
    )
    path, kwargs = trigger.serialize()
    rebuilt = import_string(path)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    assert path == "warpspeed.triggers.emr.EmrStepsTrigger"


def test_trigger_polls_until_every_step_ends(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster("scoring", "scoring")
    ids = backend.submit_jobs(ref, jobs(3))
    hook = backend.hook
    polls = []
    original = hook.step_states

    def step_states(cluster_id: str, step_ids: Any, log_uri: Any = None) -> Any:
        polls.append(cluster_id)
        if len(polls) == 2:
            finish_steps(cluster_id)
        return original(cluster_id, step_ids, log_uri)

    hook.step_states = step_states  # type: ignore[method-assign]
    trigger = EmrStepsTrigger(
        cluster_id=ref.cluster_id, step_ids=ids, poll_interval=0.01, max_poll_interval=0.02
    )
    trigger.hook = lambda: hook  # type: ignore[method-assign]

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    payload = asyncio.run(first_event())
    assert payload["status"] == "done" and payload["cluster_id"] == ref.cluster_id
    assert [s["step_id"] for s in payload["steps"]] == ids
    assert {s["state"] for s in payload["steps"]} == {"COMPLETED"}
    assert len(polls) == 2  # one ListSteps per poll for the whole cluster


def test_score_batches_defers_then_records_and_retries_spot_loss_once(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster_for("scoring", "scoring", 3)
    uris = write_manifests(backend, 3)
    op = score_operator(backend, ref.cluster_id, uris)
    ti = FakeTI()
    context: Any = {"logical_date": WINDOW_START, "ti": ti}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, EmrStepsTrigger) and len(trigger.step_ids) == 3
    pending = deferred.value.kwargs["pending"]
    json.dumps(pending)  # what the triggerer stores must be JSON
    # Extra links were persisted for the cluster.
    assert ti.xcom["warpspeed_emr_cluster"]["cluster_id"] == ref.cluster_id
    logs = ti.xcom["warpspeed_emr_step_logs"]["log_prefix"]
    assert logs == step_logs_prefix(f"s3://{BUCKET}/warpspeed/emr-logs/", ref.cluster_id)
    assert "prefix=warpspeed%2Femr-logs%2F" in EmrPoolStepLogsLink().format_link(
        **ti.xcom["warpspeed_emr_step_logs"]
    )
    assert ref.cluster_id in EmrPoolSparkHistoryLink().format_link(**ti.xcom["warpspeed_emr_spark_history"])

    ids = trigger.step_ids
    failure_details(
        backend.hook.emr,
        {
            ids[1]: {"Reason": "Spot instance interruption", "Message": "node lost"},
            ids[2]: {"Reason": "Python exception", "Message": "ValueError: bad"},
        },
    )
    finish_steps(ref.cluster_id, {ids[1]: "FAILED", ids[2]: "FAILED"})
    event = asyncio.run(trigger_event(trigger, backend.hook))
    with pytest.raises(TaskDeferred) as again:
        op.execute_complete(context, event=event, pending=pending)
    retry_trigger = again.value.trigger
    assert len(retry_trigger.step_ids) == 1  # only the Spot-lost step, once, on on-demand
    finish_steps(ref.cluster_id)
    event2 = asyncio.run(trigger_event(retry_trigger, backend.hook))
    with pytest.raises(ComputeError, match="ValueError: bad") as failed:
        op.execute_complete(context, event=event2, pending=again.value.kwargs["pending"])
    assert "1 of 3 batches failed" in str(failed.value)
    layout = WindowLayout(backend.settings.storage_prefix, window_id_for(WINDOW_START))
    runs = [
        BatchRun.from_json(backend.storage.read_text(layout.run_uri(f"scoring-{i:04d}"))) for i in range(3)
    ]
    assert [r.state for r in runs] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert runs[2].log_uri and ids[2] in runs[2].log_uri and runs[0].backend == "emr"

    # A retry of the task skips what succeeded and resubmits only the failed batch.
    with pytest.raises(TaskDeferred) as rerun:
        score_operator(backend, ref.cluster_id, uris).execute(context)
    assert len(rerun.value.trigger.step_ids) == 1


def test_execute_complete_rejects_bad_events(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    op = score_operator(backend, "j-1", [])
    pending = {
        "batches": [{"step_id": "s-1", "manifest_uri": "u", "run_uri": "r", "retried": False}],
        "finished": {},
        "started_at": WINDOW_START.isoformat(),
        "cluster_created": False,
        "run_uris": [],
    }
    with pytest.raises(ComputeError, match="boom"):
        op.execute_complete(
            {}, event={"status": "error", "cluster_id": "j-1", "message": "boom"}, pending=pending
        )
    with pytest.raises(ComputeError, match="lacks steps"):
        op.execute_complete({}, event={"status": "done", "cluster_id": "j-1", "steps": []}, pending=pending)
    with pytest.raises(ComputeError):
        op.execute_complete({}, event={"status": "done", "cluster_id": "j-2", "steps": []}, pending=pending)


def _scoring_dag_with(tmp_path: Path, profiles: dict[str, Any]) -> Any:
    """Load a copy of the scoring DAG whose bundle config holds ``profiles`` beside the shipped workloads."""
    folder = tmp_path / "dags"
    (folder / "config").mkdir(parents=True)
    shutil.copy(DAGS / "warpspeed_scoring.py", folder)
    shutil.copy(BUNDLE_CONFIG / "workloads.yaml", folder / "config")
    (folder / "config" / "cluster_profiles.yaml").write_text(yaml.safe_dump(profiles))
    spec = importlib.util.spec_from_file_location("_dag_scoring_copy", folder / "warpspeed_scoring.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def test_steps_of_the_score_task_take_the_profile_action_on_failure_like_the_cluster_first_steps(
    tmp_path: Path,
) -> None:
    """Issue 23: the score task found no profiles (the ensure task found them beside the workloads),
    so its steps and Spot retries fell back to ActionOnFailure CONTINUE."""
    doc = yaml.safe_load((BUNDLE_CONFIG / "cluster_profiles.yaml").read_text())
    doc["profiles"]["scoring"] |= {"step_concurrency": 1, "action_on_failure": "CANCEL_AND_WAIT"}
    dag = _scoring_dag_with(tmp_path, doc)
    files = {k: v for k, v in dag.get_task("score_batches").partial_kwargs.items() if k.endswith("_file")}
    dag_ensure = dag.get_task("ensure_clusters")
    moto = make_backend(tmp_path)  # only its moto clients and its settings are used
    uris = write_manifests(moto, 2)
    ensure = EnsureClustersOperator(task_id="ensure", workloads_file=dag_ensure.workloads_file,
                                    cluster_profiles_file=dag_ensure.cluster_profiles_file,
                                    workload_batches=[{"workload": "scoring", "batch_manifest_uris": uris[:1]}])
    clusters: dict[str, str] = {}
    score = ScoreBatchesOperator(task_id="score", workload="scoring", batch_manifest_uris=uris, clusters=clusters,
                                 deferrable=True, **files)
    for op in (ensure, score):
        op.__dict__.update(settings=moto.settings, storage=moto.storage)
        op.backend.__dict__.update(hook=moto.hook, s3=moto.s3)  # the operator chose the profiles file
    context: Any = {"logical_date": WINDOW_START, "ti": FakeTI()}
    clusters.update(ensure.execute(context))  # creates the cluster with the first batch's step on it
    with pytest.raises(TaskDeferred) as deferred:
        score.execute(context)
    ids = deferred.value.trigger.step_ids
    failure_details(moto.hook.emr, {ids[1]: {"Reason": "Spot instance interruption", "Message": "node lost"}})
    finish_steps(clusters["scoring"], {ids[1]: "FAILED"})
    event = asyncio.run(trigger_event(deferred.value.trigger, moto.hook))
    with pytest.raises(TaskDeferred):  # the Spot-lost batch again, on on-demand nodes
        score.execute_complete(context, event=event, pending=deferred.value.kwargs["pending"])
    steps = moto.hook.emr.list_steps(ClusterId=clusters["scoring"])["Steps"]
    assert len(steps) == 3
    assert {s["ActionOnFailure"] for s in steps} == {"CANCEL_AND_WAIT"}
