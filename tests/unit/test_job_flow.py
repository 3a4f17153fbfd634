"""The one job flow (compute/flow.py): what it resubmits, waits for and defers on, and how it judges the ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from airflow.sdk.exceptions import TaskDeferred

from tests.unit.deferred_task_support import FakeMaintenance
from warpspeed.compute.factory import profiles_file_for
from warpspeed.compute.flow import JobFlow, StepStatus, drive, failure_message
from warpspeed.exceptions import ComputeError, WarpSpeedError
from warpspeed.operators._base import checked_event
from warpspeed.operators.maintenance import IcebergMaintenanceOperator

START = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
SPOT = "Spot instance interruption"


def running(*ids: str) -> list[StepStatus]:
    return [StepStatus(i, f"job-{i}", "RUNNING") for i in ids]


class Deferred(Exception):
    def __init__(self, step_ids: list[str], flow: JobFlow) -> None:
        super().__init__(step_ids)
        self.step_ids = step_ids
        self.state = json.loads(json.dumps(flow.to_dict()))  # what the triggerer stores


def deferring(flow: JobFlow) -> Any:
    def defer(step_ids: list[str]) -> NoReturn:
        raise Deferred(step_ids, flow)

    return defer


def never(_: Any) -> NoReturn:
    raise AssertionError("not expected")


def resubmits(expected: list[int], *step_ids: str) -> Any:
    def resubmit(lost: list[int]) -> list[StepStatus]:
        assert lost == expected
        return running(*step_ids)

    return resubmit


def test_a_spot_loss_is_resubmitted_once_and_every_end_is_judged_while_waiting_inline() -> None:
    starts = running("a", "b", "c")
    flow = JobFlow.begin(starts, START)
    answers = iter([
        [StepStatus("a", "job-a", "COMPLETED"), StepStatus("b", "job-b", "FAILED", SPOT),
         StepStatus("c", "job-c", "FAILED", "Python exception", "ValueError: bad")],
        [StepStatus("b2", "job-b", "INTERRUPTED", SPOT)],  # lost again: not resubmitted a second time
    ])
    decisions: list[tuple[str, list[Any]]] = []

    def resubmit(lost: list[int]) -> list[StepStatus]:
        decisions.append(("resubmit", lost))
        return running("b2")

    def wait(step_ids: list[str]) -> list[StepStatus]:
        decisions.append(("wait", step_ids))
        return next(answers)

    assert drive(flow, starts, resubmit=resubmit, wait=wait) is flow
    assert decisions == [("wait", ["a", "b", "c"]), ("resubmit", [1]), ("wait", ["b2"])]
    outcomes = flow.outcomes(START + timedelta(seconds=90))
    assert [o.state for o in outcomes] == ["SUCCEEDED", "FAILED", "FAILED"]
    assert outcomes[1].reason == f"step b2 INTERRUPTED: {SPOT}" and outcomes[0].seconds == 90.0
    assert outcomes[2].reason == "step c FAILED: Python exception: ValueError: bad"
    assert failure_message([o.reason or "" for o in outcomes if not o.succeeded], 3).startswith("2 of 3 batches")


def test_a_deferred_flow_resumes_from_json_and_never_retries_a_job_twice() -> None:
    starts = running("a", "b")
    flow = JobFlow.begin(starts, START)
    with pytest.raises(Deferred) as first:
        drive(flow, starts, resubmit=never, wait=never, defer=deferring(flow))
    assert first.value.step_ids == ["a", "b"]

    resumed = JobFlow.from_dict(first.value.state)
    event = [StepStatus("a", "job-a", "COMPLETED"), StepStatus("b", "job-b", "FAILED", SPOT)]
    with pytest.raises(Deferred) as second:  # b again on on-demand nodes, a settled
        drive(resumed, event, resubmit=resubmits([1], "b2"), wait=never, defer=deferring(resumed))
    assert second.value.step_ids == ["b2"]

    last = JobFlow.from_dict(second.value.state)
    assert [(j.step_id, j.retried, j.final is not None) for j in last.jobs] == [("a", False, True), ("b2", True, False)]
    drive(last, [StepStatus("b2", "job-b", "FAILED", SPOT)], resubmit=never, wait=never, defer=deferring(last))
    assert [s.state for s in last.finals()] == ["COMPLETED", "FAILED"]


def test_a_flow_refuses_statuses_that_miss_its_running_steps() -> None:
    flow = JobFlow.begin(running("a", "b"), START)
    with pytest.raises(ComputeError, match=r"lacks steps \['b'\]"):
        drive(flow, [StepStatus("a", "job-a", "COMPLETED")], resubmit=never, wait=never)
    with pytest.raises(ComputeError, match="have not ended"):
        flow.finals()


def test_the_maintenance_operator_defers_on_its_retry_and_finishes_a_second_spot_loss_failed() -> None:
    op = IcebergMaintenanceOperator(task_id="maintain", table="scores.account_scores", plan_uri="p.plan.json")
    op.__dict__["service"] = FakeMaintenance(["RUNNING"])
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"run_id": "scheduled__1"})
    assert deferred.value.trigger.step_ids == ["s-1"]
    lost = {"status": "done", "cluster_id": "j-1", "steps": [StepStatus("s-1", "m", "FAILED", SPOT).to_dict()]}
    with pytest.raises(TaskDeferred) as again:
        op.execute_complete({}, event=lost, pending=deferred.value.kwargs["pending"])
    assert again.value.trigger.step_ids == ["s-2"]  # it waits for the on-demand retry, not the lost step
    (job,) = JobFlow.from_dict(again.value.kwargs["pending"]["flow"]).jobs
    assert (job.step_id, job.retried) == ("s-2", True)
    lost_again = {**lost, "steps": [StepStatus("s-2", "m", "FAILED", SPOT).to_dict()]}
    assert op.execute_complete({}, event=lost_again, pending=again.value.kwargs["pending"]) == "report.json"
    assert [(s.step_id, s.state) for s in op.service.finished] == [("s-2", "FAILED")]
    with pytest.raises(ComputeError, match="event is for cluster_id 'j-9', not 'j-1'"):
        op.execute_complete({}, event={**lost, "cluster_id": "j-9"}, pending=again.value.kwargs["pending"])


def test_trigger_events_are_checked_in_one_place() -> None:
    assert checked_event({"status": "done", "cluster_id": "j-1"}, status="done", failed="x", cluster_id="j-1")
    with pytest.raises(WarpSpeedError, match="waiting failed: the trigger sent no event"):
        checked_event(None, status="done", failed="waiting failed")
    with pytest.raises(ComputeError, match="waiting failed: throttled"):
        checked_event({"status": "error", "message": "throttled"}, status="done", failed="waiting failed",
                      error=ComputeError)
    with pytest.raises(WarpSpeedError, match="event is for cluster_id 'j-2', not 'j-1'"):
        checked_event({"status": "done", "cluster_id": "j-2"}, status="done", failed="w", cluster_id="j-1")


def test_the_profiles_file_is_the_given_one_else_the_one_beside_the_workloads(tmp_path: Path) -> None:
    workloads = tmp_path / "config" / "workloads.yaml"
    assert profiles_file_for(workloads, None) == str(tmp_path / "config" / "cluster_profiles.yaml")
    assert profiles_file_for(workloads, "/etc/p.yaml") == "/etc/p.yaml"
    assert profiles_file_for(None, None) is None
