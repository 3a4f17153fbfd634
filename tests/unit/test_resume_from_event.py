"""A deferred score task resumes from the trigger's event alone, as ``airflow dags test`` resumes it (issue 22).

The rehearsal's first ``dags test`` windows on EMR failed every resumed score task with "execute_complete
got no deferred flow": Airflow 3.3's ``dags test`` runs the trigger in line and hands the task only
``{"event": ...}`` (``airflow.sdk.definitions.dag``), where the triggerer adds the event to the
deferral's kwargs. The retry then adopted the finished steps by name, except a step lost to Spot:
it was resubmitted as is, not on on-demand capacity. The trigger now carries the task's state.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.module_loading import import_string

from tests.unit.deferred_task_support import WINDOW_START, FakeTI, score_operator, trigger_event, write_manifests
from tests.unit.emr_support import failure_details, finish_steps, make_backend
from warpspeed.triggers.emr import EmrStepsTrigger
from warpspeed.window.manifests import BatchRun, WindowLayout, window_id_for

pytestmark = pytest.mark.usefixtures("aws_env")


def test_a_task_resumed_with_the_event_alone_retries_its_spot_loss_on_demand_and_records(tmp_path: Path) -> None:
    backend = make_backend(tmp_path)
    ref = backend.ensure_cluster_for("scoring", "scoring", 2)
    op = score_operator(backend, ref.cluster_id, write_manifests(backend, 2))
    context: Any = {"logical_date": WINDOW_START, "ti": FakeTI()}
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    trigger = deferred.value.trigger
    assert trigger.echo == deferred.value.kwargs["pending"]
    path, kwargs = trigger.serialize()  # what the triggerer stores rebuilds the same trigger
    assert import_string(path)(**json.loads(json.dumps(kwargs))).serialize() == (path, kwargs)

    lost = trigger.step_ids[1]
    failure_details(backend.hook.emr, {lost: {"Reason": "Spot instance interruption", "Message": "node lost"}})
    finish_steps(ref.cluster_id, {lost: "FAILED"})
    with pytest.raises(TaskDeferred) as again:  # no kwargs: dags test's resume
        op.execute_complete(context, event=asyncio.run(trigger_event(trigger, backend.hook)), pending=None)
    retry = again.value.trigger
    assert isinstance(retry, EmrStepsTrigger) and len(retry.step_ids) == 1
    steps = backend.hook.emr.list_steps(ClusterId=ref.cluster_id)["Steps"]
    (resubmitted,) = [s for s in steps if s["Id"] == retry.step_ids[0]]
    assert resubmitted["Name"].endswith("#on-demand")

    finish_steps(ref.cluster_id)
    assert len(op.execute_complete(context, event=asyncio.run(trigger_event(retry, backend.hook)), pending=None)) == 2
    layout = WindowLayout(backend.settings.storage_prefix, window_id_for(WINDOW_START))
    runs = [BatchRun.from_json(backend.storage.read_text(layout.run_uri(f"scoring-{i:04d}"))) for i in range(2)]
    assert [r.state for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
