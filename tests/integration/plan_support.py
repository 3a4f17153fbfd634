"""The plan task on local storage: window starts, two workloads, requests, and a state folder to plan in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from warpspeed.intake.schema import ScoringRequest
from warpspeed.operators.plan import PlanBatchesOperator
from warpspeed.storage.documents import LocalStorage, join_uri
from warpspeed.window.carryover import CarryOverChain
from warpspeed.window.manifests import BatchManifest, IntakeManifest, WindowLayout, models_uri, window_id_for

W1 = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)
W2, W3, W4 = (W1 + timedelta(minutes=30 * i) for i in (1, 2, 3))
WORKLOADS = """\
workloads:
  scoring:
    models: [churn_risk, upsell_propensity]
    planning: {rows_cap: 100, max_tenants_per_batch: 3, max_batches_per_window: 2}
  intent:
    models: [intent_surge]
    planning: {rows_cap: 100, max_tenants_per_batch: 3, max_batches_per_window: 5}
"""


def req(rid: str, tenant: str, *, rows: int = 40, model: str = "churn_risk", workload: str = "scoring",
        priority: str = "normal", at: datetime = W1) -> ScoringRequest:
    return ScoringRequest(rid, tenant, model, "v1", workload, at.isoformat(), priority, rows)


class Env:
    """A storage prefix in a tmp folder, and a way to run the plan task for a window."""

    def __init__(self, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.prefix = (self.home / "storage").as_uri()
        self.storage = LocalStorage()
        self.workloads_file = tmp_path / "workloads.yaml"
        self.workloads_file.write_text(WORKLOADS, encoding="utf-8")
        for model in ("churn_risk", "intent_surge"):  # the plan refuses versions that do not exist
            shipped = resources.files("warpspeed.embedded").joinpath("models", f"{model}.v1.json")
            self.storage.write_text(join_uri(models_uri(self.prefix), model, "v1.json"), shipped.read_text("utf-8"))

    def layout(self, start: datetime) -> WindowLayout:
        return WindowLayout(self.prefix, window_id_for(start))

    def collect(self, start: datetime, requests: list[ScoringRequest]) -> str:
        layout = self.layout(start)
        manifest = IntakeManifest(window_id_for(start)).merged(requests, [])
        self.storage.write_text(layout.intake_uri, manifest.to_json())
        return layout.intake_uri

    def plan(self, start: datetime) -> list[dict[str, Any]]:
        op = PlanBatchesOperator(task_id="plan_batches", intake_manifest_uri=self.layout(start).intake_uri,
                                 workloads_file=str(self.workloads_file))
        return op.execute({"logical_date": start})  # type: ignore[arg-type]

    def plan_doc(self, start: datetime) -> dict[str, Any]:
        return dict(json.loads(self.storage.read_text(self.layout(start).plan_uri)))

    def files(self) -> dict[str, str]:
        root = self.home / "storage"
        return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*.json"))}

    def batched(self, start: datetime) -> list[str]:
        return [m.request_id for uri in self.storage.list(self.layout(start).root + "/batches")
                for m in BatchManifest.from_json(self.storage.read_text(uri)).members]

    @property
    def chain(self) -> CarryOverChain:
        return CarryOverChain(self.storage, self.prefix)
