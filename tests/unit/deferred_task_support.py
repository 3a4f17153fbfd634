"""Drive the deferrable EMR tasks without Airflow: manifests, the score task, a task instance, the trigger's event.

The score task runs on a backend of ``tests/unit/emr_support.py`` (moto); :class:`FakeMaintenance`
stands in for the maintenance service on an asynchronous backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from warpspeed.compute.base import ClusterRef
from warpspeed.compute.emr.backend import EmrComputeBackend
from warpspeed.compute.flow import StepStatus
from warpspeed.hooks.emr import EmrPoolHook
from warpspeed.intake.schema import ScoringRequest
from warpspeed.operators.score import ScoreBatchesOperator
from warpspeed.triggers.emr import EmrStepsTrigger
from warpspeed.window.manifests import BatchManifest, WindowLayout, window_id_for

WINDOW_START = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


def write_manifests(backend: EmrComputeBackend, n: int) -> list[str]:
    layout = WindowLayout(backend.settings.storage_prefix, window_id_for(WINDOW_START))
    uris = []
    for i in range(n):
        req = ScoringRequest(
            request_id=f"r{i}",
            tenant_id=f"t{i}",
            model="churn_risk",
            model_version="v1",
            workload="scoring",
            requested_at=WINDOW_START.isoformat(),
            estimated_accounts=10,
        )
        manifest = BatchManifest(
            batch_id=f"scoring-{i:04d}",
            window_id=layout.window_id,
            workload="scoring",
            members=(req,),
            estimated_rows=10,
            models_uri="s3://x/models",
            summary_uri=layout.summary_uri(f"scoring-{i:04d}"),
        )
        uri = layout.batch_uri(manifest.batch_id)
        backend.storage.write_text(uri, manifest.to_json())
        uris.append(uri)
    return uris


class FakeTI:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def score_operator(backend: EmrComputeBackend, cluster_id: str, uris: list[str]) -> ScoreBatchesOperator:
    op = ScoreBatchesOperator(
        task_id="score",
        workload="scoring",
        batch_manifest_uris=uris,
        clusters={"scoring": cluster_id},
        deferrable=True,
        poll_interval=1,
    )
    op.__dict__.update(settings=backend.settings, backend=backend, storage=backend.storage)
    return op


async def trigger_event(trigger: EmrStepsTrigger, hook: EmrPoolHook) -> dict[str, Any]:
    trigger.hook = lambda: hook  # type: ignore[method-assign]
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("no event")


class FakeMaintenance:
    """The maintenance service's start/finish seen from the operator, on an asynchronous backend."""

    def __init__(self, states: Sequence[str]) -> None:
        self.states = list(states)
        self.started: list[bool] = []
        self.finished: list[StepStatus] = []
        self.backend = self

    def start(self, plan_uri: str, run_id: str, *, on_demand_only: bool = False,
              before: Any = None) -> tuple[dict[str, Any], StepStatus]:
        self.started.append(on_demand_only)
        pending = {"plan_uri": plan_uri, "run_id": run_id, "workload": "maintenance", "cluster_id": "j-1",
                   "backend": "emr", "started_at": WINDOW_START.isoformat(), "before": before or {"n": 1},
                   "retried": on_demand_only}
        return pending, StepStatus(f"s-{len(self.started)}", "m", "RUNNING")

    def cluster_of(self, pending: dict[str, Any]) -> ClusterRef:
        return ClusterRef(pending["workload"], pending["cluster_id"], pending["backend"])

    def wait_trigger(self, cluster: ClusterRef, ids: list[str], poll_interval: float) -> Any:
        return EmrStepsTrigger(cluster_id=cluster.cluster_id, step_ids=ids, poll_interval=poll_interval)

    def finish(self, pending: dict[str, Any], job: StepStatus) -> Any:
        self.finished.append(job)
        return type("Outcome", (), {"report_uri": "report.json"})()
