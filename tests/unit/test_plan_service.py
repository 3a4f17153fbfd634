"""The plan service without Airflow or SQS: its hooks are callables, asked only when needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.intake.schema import ScoringRequest
from warpspeed.planning.service import PlanService
from warpspeed.storage.documents import LocalStorage
from warpspeed.window.manifests import BatchManifest, IntakeManifest, models_uri
from warpspeed.window.rule import Window

START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(minutes=30))
WORKLOADS = WorkloadCatalog.from_dict({"workloads": {"scoring": {
    "features_table": "crm.features", "models": ["churn"]}}})


class FakeSqs:
    """Records the dead-letter sends the service asks for."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str], str]] = []

    def send_to_dead_letter(self, dlq_url: str, held: Any, window_id: str) -> int:
        self.sent.append((dlq_url, [h.message_id for h in held], window_id))
        return len(held)


class Calls:
    """The service's hooks as callables, counting how often each is asked for."""

    def __init__(self) -> None:
        self.catalogs = self.hooks = self.urls = 0
        self.sqs = FakeSqs()

    def load_catalog(self) -> Any:
        self.catalogs += 1
        fields = [SimpleNamespace(name=c, field_type=t) for c, t in (("tenant_id", "string"),
                                                                      ("account_id", "string"), ("a", "double"))]
        return SimpleNamespace(load_table=lambda table: SimpleNamespace(schema=lambda: SimpleNamespace(fields=fields)))

    def sqs_hook(self) -> FakeSqs:
        self.hooks += 1
        return self.sqs

    def dlq_url(self) -> str:
        self.urls += 1
        return "https://sqs/dlq"


def service(tmp_path: Path, calls: Calls) -> tuple[PlanService, str]:
    prefix = (tmp_path / "storage").as_uri()
    storage = LocalStorage()
    model = {"schema": "warpspeed.model/v1", "kind": "logistic", "model": "churn", "version": "v1",
             "intercept": 0.0, "features": [{"name": "a", "coefficient": 1.0}]}
    storage.write_text(f"{models_uri(prefix)}/churn/v1.json", json.dumps(model))
    svc = PlanService(storage, prefix, WORKLOADS, load_catalog=calls.load_catalog, sqs_hook=calls.sqs_hook,
                      dlq_url=calls.dlq_url)
    return svc, prefix


def req(rid: str, tenant: str, version: str) -> ScoringRequest:
    return ScoringRequest(rid, tenant, "churn", version, "scoring", START.isoformat(), "normal", 10)


def test_the_service_refuses_once_across_retries_and_returns_the_manifests_it_wrote(tmp_path: Path) -> None:
    calls = Calls()
    svc, prefix = service(tmp_path, calls)
    intake_uri = WINDOW.layout(prefix).intake_uri
    svc.storage.write_text(intake_uri, IntakeManifest(WINDOW.id).merged(
        [req("r1", "t1", "v1"), req("r9", "t2", "v9")], [], sources={"r1": "m1", "r9": "m9"}).to_json())
    for _attempt in range(2):
        planned = svc.plan_window(WINDOW, intake_uri)
    assert calls.sqs.sent == [("https://sqs/dlq", ["m9"], WINDOW.id)]  # the retry sends nothing again
    assert (calls.hooks, calls.urls, calls.catalogs) == (1, 1, 2)  # the catalog once per attempt
    assert [e["request_id"] for e in planned.refused] == ["r9"]
    (group,) = planned.manifest_uris_by_workload()
    assert group["workload"] == "scoring"
    (uri,) = group["batch_manifest_uris"]
    assert [m.request_id for m in BatchManifest.from_json(svc.storage.read_text(uri)).members] == ["r1"]
    assert planned.plan_input.mode == "retry" and planned.head_moved is False


def test_a_window_with_nothing_to_refuse_never_builds_the_sqs_hook(tmp_path: Path) -> None:
    calls = Calls()
    svc, prefix = service(tmp_path, calls)
    intake_uri = WINDOW.layout(prefix).intake_uri
    svc.storage.write_text(intake_uri, IntakeManifest(WINDOW.id).merged([req("r1", "t1", "v1")], []).to_json())
    planned = svc.plan_window(WINDOW, intake_uri)
    assert (calls.hooks, calls.urls) == (0, 0)
    assert planned.refused == () and len(planned.plan.batches) == 1


class CatalogDown(Calls):
    """The catalog cannot be reached at plan time."""

    def load_catalog(self) -> Any:
        self.catalogs += 1
        raise ConnectionError("catalog unreachable")


def test_a_missing_version_never_supersedes_a_valid_request_while_the_catalog_is_down(tmp_path: Path) -> None:
    """Issue 27: with the table unreadable, both versions were "unavailable" and the newer one, v404, won.

    Whether v404 exists is the model registry's answer (storage), not the catalog's: it is
    missing for good, so it loses to v1 (whose fit to the table the batch decides) as it would
    with the catalog up, and nothing is sent to the DLQ.
    """
    calls = CatalogDown()
    svc, prefix = service(tmp_path, calls)
    intake_uri = WINDOW.layout(prefix).intake_uri
    bogus = ScoringRequest("r404", "t1", "churn", "v404", "scoring", (START + timedelta(minutes=5)).isoformat(),
                           "normal", 10)
    svc.storage.write_text(intake_uri, IntakeManifest(WINDOW.id).merged([req("r1", "t1", "v1"), bogus], []).to_json())
    planned = svc.plan_window(WINDOW, intake_uri)
    (batch,) = planned.plan.batches
    assert [m.request_id for m in batch.members] == ["r1"]
    assert [(s.request.request_id, s.reason) for s in planned.plan.superseded] == [("r404", "superseded by r1")]
    assert planned.refused == () and calls.sqs.sent == []
    unavailable = {u.version: u for u in svc.probe([req("r1", "t1", "v1"), bogus])}
    assert unavailable["v404"].permanent and unavailable["v404"].reason.startswith("model churn v404 not found at")
    assert not unavailable["v1"].permanent  # undecided: the table could not be read


def test_a_lone_missing_version_is_refused_while_the_catalog_is_down(tmp_path: Path) -> None:
    calls = CatalogDown()
    svc, prefix = service(tmp_path, calls)
    intake_uri = WINDOW.layout(prefix).intake_uri
    svc.storage.write_text(intake_uri, IntakeManifest(WINDOW.id).merged(
        [req("r1", "t1", "v1"), req("r9", "t2", "v9")], [], sources={"r1": "m1", "r9": "m9"}).to_json())
    planned = svc.plan_window(WINDOW, intake_uri)
    assert [e["request_id"] for e in planned.refused] == ["r9"]
    assert calls.sqs.sent == [("https://sqs/dlq", ["m9"], WINDOW.id)]
    assert [m.request_id for b in planned.plan.batches for m in b.members] == ["r1"]
