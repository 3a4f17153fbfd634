"""One flow for every compute backend: defer or finish, reconnect on retry, cancel on kill (moto EMR)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import TaskDeferred

from tests.paths import BUNDLE_CONFIG
from tests.unit.deferred_task_support import WINDOW_START, FakeMaintenance, FakeTI, score_operator, write_manifests
from tests.unit.emr_support import Calls, failure_details, finish_steps, jobs, make_backend, moto_cluster
from warpspeed.compute.base import ClusterRef
from warpspeed.compute.flow import StepStatus, outcome_of, should_retry_on_demand
from warpspeed.config.settings import WarpSpeedSettings, default_home
from warpspeed.operators.maintenance import IcebergMaintenanceOperator

pytestmark = pytest.mark.usefixtures("aws_env")


def test_spot_retry_rule_is_once_and_only_for_spot_losses() -> None:
    lost = StepStatus("s-1", "b", "FAILED", "Spot instance terminated")
    assert should_retry_on_demand(lost, retried=False)
    assert not should_retry_on_demand(lost, retried=True)
    assert not should_retry_on_demand(StepStatus("s-2", "b", "FAILED", "KeyError"), retried=False)
    assert not should_retry_on_demand(StepStatus("s-3", "b", "COMPLETED"), retried=False)


def test_a_cold_window_lists_clusters_once_and_creates_them_with_their_steps(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    calls = Calls(backend.hook.emr)
    work = {w: jobs(n, prefix=f"{w}-") for w, n in {"scoring": 5, "intent": 3, "upsell": 2}.items()}
    refs = backend.ensure_clusters({w: ("scoring", j) for w, j in work.items()})
    assert calls.logical["ListClusters"] == 1 and calls.logical["RunJobFlow"] == 3
    for workload, ref in refs.items():
        statuses = backend.start(ref, work[workload])  # finds the launched steps by name
        assert [s.name for s in statuses] == [j.name for j in work[workload]]
        assert len(moto_cluster(ref.cluster_id).steps) == len(work[workload])
    assert calls.logical["AddJobFlowSteps"] == 0
    assert calls.total == 1 + 3 + 3  # ListClusters, RunJobFlow per workload, one ListSteps per cluster


def test_a_task_retry_waits_for_steps_still_running_instead_of_resubmitting(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster_for("scoring", "scoring", 3)
    uris = write_manifests(backend, 3)
    context: Any = {"logical_date": WINDOW_START, "ti": FakeTI()}
    with pytest.raises(TaskDeferred) as first:
        score_operator(backend, ref.cluster_id, uris).execute(context)
    retry_backend = make_backend(tmp_path)  # the retried task: a new process, nothing cached
    with pytest.raises(TaskDeferred) as again:
        score_operator(retry_backend, ref.cluster_id, uris).execute(context)
    assert again.value.trigger.step_ids == first.value.trigger.step_ids
    assert len(moto_cluster(ref.cluster_id).steps) == 3


def test_on_kill_cancels_the_steps_the_task_started(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster_for("scoring", "scoring", 2)
    op = score_operator(backend, ref.cluster_id, write_manifests(backend, 2))
    cancelled: list[tuple[str, list[str]]] = []
    backend.hook.cancel_steps = lambda cluster_id, ids: cancelled.append((cluster_id, list(ids)))  # type: ignore[method-assign]
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"logical_date": WINDOW_START, "ti": FakeTI()})
    op.on_kill()
    assert cancelled == [(ref.cluster_id, deferred.value.trigger.step_ids)]


def test_action_on_failure_of_the_profile_is_honoured(tmp_path: Path) -> None:
    doc = yaml.safe_load((BUNDLE_CONFIG / "cluster_profiles.yaml").read_text())
    doc["profiles"]["scoring"] |= {"step_concurrency": 1, "action_on_failure": "CANCEL_AND_WAIT"}
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(yaml.safe_dump(doc))
    backend = make_backend(tmp_path)
    backend.profiles_file = profiles
    ref = backend.ensure_cluster("scoring", "scoring")
    (step_id,) = backend.submit_jobs(ref, jobs(1))
    step = backend.hook.emr.describe_step(ClusterId=ref.cluster_id, StepId=step_id)["Step"]
    assert step["ActionOnFailure"] == "CANCEL_AND_WAIT"
    fresh = make_backend(tmp_path)  # knows the profile only from the cluster's tag
    fresh.profiles_file = profiles
    assert fresh.action_on_failure(ClusterRef("scoring", ref.cluster_id, "emr")) == "CANCEL_AND_WAIT"


def test_maintenance_on_emr_defers_instead_of_holding_a_worker(tmp_path: Path) -> None:
    op = IcebergMaintenanceOperator(task_id="maintain", table="scores.account_scores", plan_uri="p.plan.json",
                                    deferrable=True)
    service = FakeMaintenance(["RUNNING"])
    op.__dict__["service"] = service
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"run_id": "scheduled__1"})
    pending = deferred.value.kwargs["pending"]
    json.dumps(pending)
    lost = {"status": "done", "cluster_id": "j-1",
            "steps": [StepStatus("s-1", "m", "FAILED", "Spot instance terminated").to_dict()]}
    with pytest.raises(TaskDeferred) as again:  # lost to Spot: once more on on-demand, deferred again
        op.execute_complete({}, event=lost, pending=pending)
    assert service.started == [False, True]
    assert again.value.kwargs["pending"]["before"] == pending["before"]
    done = {"status": "done", "cluster_id": "j-1", "steps": [StepStatus("s-2", "m", "COMPLETED").to_dict()]}
    assert op.execute_complete({}, event=done, pending=again.value.kwargs["pending"]) == "report.json"
    assert [s.state for s in service.finished] == ["COMPLETED"]


def test_state_and_jars_default_to_a_per_user_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WARPSPEED_HOME", raising=False)
    monkeypatch.delenv("WARPSPEED_JARS_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_home() == (tmp_path / ".warpspeed").resolve()
    settings = WarpSpeedSettings.from_mapping({})
    assert settings.home == (tmp_path / ".warpspeed").resolve()
    assert settings.jars_dir == settings.home / "jars"
    monkeypatch.setenv("WARPSPEED_JARS_DIR", str(tmp_path / "j"))
    assert WarpSpeedSettings.from_mapping({}).jars_dir == tmp_path / "j"


def test_steps_launched_with_the_cluster_are_adopted_by_the_scoring_task_even_when_done(tmp_path: Path) -> None:
    creator = make_backend(tmp_path)  # EnsureClustersOperator: creates the cluster with the steps
    work = jobs(3)
    ref = creator.ensure_clusters({"scoring": ("scoring", work)})["scoring"]
    finish_steps(ref.cluster_id, {moto_cluster(ref.cluster_id).steps[0].id: "FAILED"})
    scorer = make_backend(tmp_path)  # ScoreBatchesOperator: another process
    calls = Calls(scorer.hook.emr)
    statuses = scorer.start(ClusterRef("scoring", ref.cluster_id, "emr"), work)
    assert [s.state for s in statuses] == ["PENDING", "COMPLETED", "COMPLETED"]  # the failed one runs again
    assert calls.logical["AddJobFlowSteps"] == 1 and len(moto_cluster(ref.cluster_id).steps) == 4


def test_a_launched_step_lost_to_spot_before_the_scoring_task_starts_is_adopted_for_its_on_demand_retry(
    tmp_path: Path,
) -> None:
    # seen on the rehearsal under load: the step launched with the cluster was lost to Spot before the scoring
    # task (another process) listed the cluster's steps; it ran the job again under the same name, on Spot
    creator = make_backend(tmp_path)
    work = jobs(3)
    ref = creator.ensure_clusters({"scoring": ("scoring", work)})["scoring"]
    lost, failed, _ = (s.id for s in moto_cluster(ref.cluster_id).steps)
    finish_steps(ref.cluster_id, {lost: "FAILED", failed: "FAILED"})
    scorer = make_backend(tmp_path)
    failure_details(scorer.hook.emr, {lost: {"Reason": "Spot instance interruption", "Message": "node lost"},
                                      failed: {"Reason": "ValueError: bad model", "Message": "exit 1"}})
    calls = Calls(scorer.hook.emr)
    statuses = scorer.start(ClusterRef("scoring", ref.cluster_id, "emr"), work)
    assert [s.state for s in statuses] == ["FAILED", "PENDING", "COMPLETED"]  # the job's own failure runs again
    assert statuses[0].step_id == lost and should_retry_on_demand(statuses[0], retried=False)
    assert calls.logical["AddJobFlowSteps"] == 1 and len(moto_cluster(ref.cluster_id).steps) == 4


def test_a_job_that_measured_its_own_run_time_is_charged_that_not_the_whole_task() -> None:
    local = StepStatus("local-b1", "warpspeed-b1", "COMPLETED", seconds=12.5)
    assert outcome_of(local, 300.0).seconds == 12.5  # the local backend runs batches one by one
    assert outcome_of(StepStatus.from_dict(json.loads(json.dumps(local.to_dict()))), 300.0).seconds == 12.5
    assert outcome_of(StepStatus("s-1", "warpspeed-b2", "COMPLETED"), 300.0).seconds == 300.0  # EMR: elapsed
