"""The plan task probes requested model versions: a bogus version never supersedes a valid request."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warpspeed.embedded.seed import publish_seed_models
from warpspeed.manifests import BatchManifest, IntakeManifest, WindowLayout, window_id_for
from warpspeed.operators.batch_plan import PlanBatchesOperator
from warpspeed.request_schema import ScoringRequest
from warpspeed.settings import load_settings
from warpspeed.storage import LocalStorage
from warpspeed.tables import ensure_tables

W1 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
REPO_WORKLOADS = Path(__file__).parents[2] / "dags" / "config" / "workloads.yaml"


def test_bogus_version_loses_to_the_valid_request_and_is_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest_catalog_for: Callable[[Path], object]
) -> None:
    rest_catalog_for(tmp_path / "home")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AIRFLOW__WARPSPEED__STORAGE_PREFIX", raising=False)
    settings = load_settings()
    ensure_tables(settings.catalog.load())
    publish_seed_models(settings.storage_prefix)
    valid = ScoringRequest("r-valid", "t1", "churn_risk", "v1", "scoring", W1.isoformat(), "normal", 10)
    bogus = ScoringRequest("r-bogus", "t1", "churn_risk", "v404", "scoring",
                           (W1 + timedelta(minutes=5)).isoformat(), "normal", 10)
    other = ScoringRequest("r-other", "t2", "upsell_propensity", "v1", "scoring", W1.isoformat(), "normal", 10)
    layout = WindowLayout(settings.storage_prefix, window_id_for(W1))
    storage = LocalStorage()
    storage.write_text(layout.intake_uri, IntakeManifest(window_id_for(W1)).merged([valid, bogus, other], []).to_json())

    op = PlanBatchesOperator(task_id="plan_batches", intake_manifest_uri=layout.intake_uri,
                             workloads_file=str(REPO_WORKLOADS))
    (out,) = op.execute({"logical_date": W1})  # type: ignore[arg-type]
    (uri,) = out["batch_manifest_uris"]
    manifest = BatchManifest.from_json(storage.read_text(uri))
    assert sorted(m.request_id for m in manifest.members) == ["r-other", "r-valid"]
    assert manifest.models["upsell_propensity"]["flavour"] == "mlflow"
    assert manifest.entity_key == ("account_id",) and manifest.tenant_column == "tenant_id"
    plan = json.loads(storage.read_text(layout.plan_uri))
    assert [s["request_id"] for s in plan["superseded"]] == ["r-bogus"]
    (missing,) = plan["unavailable_models"]
    assert (missing["model"], missing["model_version"]) == ("churn_risk", "v404")
    assert missing["reason"].startswith("model churn_risk v404 not found at file://")
