"""The plan task probes requested model versions: a bogus version never supersedes a valid request."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from warpspeed.config.settings import load_settings
from warpspeed.embedded.seed import publish_seed_models
from warpspeed.embedded.sqs_server import LocalSqs
from warpspeed.hooks.sqs import SqsIntakeHook
from warpspeed.intake.schema import ScoringRequest
from warpspeed.ledger.tables import ensure_tables
from warpspeed.operators.plan import PlanBatchesOperator
from warpspeed.storage.documents import LocalStorage, local_path
from warpspeed.window.manifests import BatchManifest, IntakeManifest, WindowLayout, models_uri, window_id_for

W1 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
REPO_WORKLOADS = Path(__file__).parents[2] / "dags" / "config" / "workloads.yaml"


def test_bogus_version_loses_to_the_valid_request_and_is_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest_catalog_for: Callable[[Path], object]
) -> None:
    rest_catalog_for(tmp_path / "home")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path / "home"))
    # these tests read and write documents in the state folder: the file:// setting
    monkeypatch.setenv("AIRFLOW__WARPSPEED__STORAGE_PREFIX", (tmp_path / "home" / "storage").as_uri())
    settings = load_settings()
    ensure_tables(settings.catalog.load())
    publish_seed_models(settings.storage_prefix, settings.storage())
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


def _plan_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest_catalog_for: Callable[[Path], object],
              sqs: LocalSqs) -> tuple[WindowLayout, LocalStorage]:
    rest_catalog_for(tmp_path / "home")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path / "home"))
    # these tests read and write documents in the state folder: the file:// setting
    monkeypatch.setenv("AIRFLOW__WARPSPEED__STORAGE_PREFIX", (tmp_path / "home" / "storage").as_uri())
    monkeypatch.setenv("AIRFLOW_CONN_WARPSPEED_TEST", sqs.airflow_connection())
    monkeypatch.setenv("AIRFLOW__WARPSPEED__AWS_CONN_ID", "warpspeed_test")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__QUEUE_URL", sqs.queue_url)
    monkeypatch.setenv("AIRFLOW__WARPSPEED__DEAD_LETTER_QUEUE_URL", sqs.dead_letter_queue_url)
    settings = load_settings()
    ensure_tables(settings.catalog.load())
    publish_seed_models(settings.storage_prefix, settings.storage())
    return WindowLayout(settings.storage_prefix, window_id_for(W1)), LocalStorage()


def _dlq(sqs: LocalSqs) -> list[dict[str, Any]]:
    client, out = sqs.client(), []
    while msgs := client.receive_message(QueueUrl=sqs.dead_letter_queue_url, MaxNumberOfMessages=10,
                                         MessageAttributeNames=["All"], WaitTimeSeconds=0,
                                         VisibilityTimeout=300).get("Messages", []):
        out.extend(msgs)
    return out


def test_a_version_with_no_valid_alternative_is_refused_to_the_dlq_once_across_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest_catalog_for: Callable[[Path], object], sqs: LocalSqs
) -> None:
    layout, storage = _plan_env(tmp_path, monkeypatch, rest_catalog_for, sqs)
    valid = ScoringRequest("r-valid", "t1", "churn_risk", "v1", "scoring", W1.isoformat(), "normal", 10)
    lone = ScoringRequest("r-v999", "t2", "churn_risk", "v999", "scoring", W1.isoformat(), "normal", 10)
    storage.write_text(layout.intake_uri, IntakeManifest(window_id_for(W1)).merged(
        [valid, lone], [], sources={"r-valid": "m-valid", "r-v999": "m-v999"}).to_json())
    op = PlanBatchesOperator(task_id="plan_batches", intake_manifest_uri=layout.intake_uri,
                             workloads_file=str(REPO_WORKLOADS))

    crashed = []

    def crash_once(self: object, *args: object, **kwargs: object) -> int:
        crashed.append(1)
        raise RuntimeError("killed before the DLQ send")

    with monkeypatch.context() as m:  # a crash after the refusal is recorded, before it is sent
        m.setattr(SqsIntakeHook, "send_to_dead_letter", crash_once)
        with pytest.raises(RuntimeError):
            op.execute({"logical_date": W1})  # type: ignore[arg-type]
    assert crashed
    for _attempt in range(2):  # the retry sends it; a second retry sends nothing again
        (out,) = op.execute({"logical_date": W1})  # type: ignore[arg-type]
    (uri,) = out["batch_manifest_uris"]
    assert [m.request_id for m in BatchManifest.from_json(storage.read_text(uri)).members] == ["r-valid"]
    plan = json.loads(storage.read_text(layout.plan_uri))
    (refused,) = plan["refused"]
    assert (refused["request_id"], refused["source_message_id"], refused["dead_lettered"]) == (
        "r-v999", "m-v999", True)
    assert refused["reason"].startswith("model churn_risk v999 not found at file://")
    (dead,) = _dlq(sqs)
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["warpspeed_reasons"] == refused["reason"]
    assert attributes["warpspeed_source_message_id"] == "m-v999"
    assert attributes["warpspeed_window_id"] == window_id_for(W1)
    assert json.loads(dead["Body"])["request_id"] == "r-v999"


def test_a_refusal_stays_refused_on_a_retry_even_if_the_version_appears_since(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest_catalog_for: Callable[[Path], object], sqs: LocalSqs
) -> None:
    layout, storage = _plan_env(tmp_path, monkeypatch, rest_catalog_for, sqs)
    lone = ScoringRequest("r-v7", "t2", "churn_risk", "v7", "scoring", W1.isoformat(), "normal", 10)
    storage.write_text(layout.intake_uri, IntakeManifest(window_id_for(W1)).merged([lone], []).to_json())
    op = PlanBatchesOperator(task_id="plan_batches", intake_manifest_uri=layout.intake_uri,
                             workloads_file=str(REPO_WORKLOADS))
    assert op.execute({"logical_date": W1}) == []  # type: ignore[arg-type]
    v1 = Path(local_path(models_uri(load_settings().storage_prefix))) / "churn_risk"
    (v1 / "v7.json").write_text((v1 / "v1.json").read_text().replace('"v1"', '"v7"'))
    assert op.execute({"logical_date": W1}) == []  # type: ignore[arg-type]  # already in the DLQ: not scored too
    (dead,) = _dlq(sqs)
    assert dead["MessageAttributes"]["warpspeed_source_message_id"]["StringValue"] == "request:r-v7"


def test_a_version_reading_a_string_feature_is_refused_at_plan_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest_catalog_for: Callable[[Path], object], sqs: LocalSqs
) -> None:
    """Issue 27: the probe checked that columns exist, not their types; now a non-numeric one is refused."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, NestedField, StringType

    from warpspeed.ledger.tables import FEATURE_COLUMNS

    layout, storage = _plan_env(tmp_path, monkeypatch, rest_catalog_for, sqs)
    catalog = load_settings().catalog.load()
    catalog.create_namespace_if_not_exists("typed")
    catalog.create_table_if_not_exists("typed.features", Schema(
        NestedField(1, "tenant_id", StringType(), required=False),
        NestedField(2, "account_id", StringType(), required=False),
        *(NestedField(3 + i, c, StringType() if c == "engagement_7d" else DoubleType(), required=False)
          for i, c in enumerate(FEATURE_COLUMNS))))
    workloads = tmp_path / "workloads.yaml"
    workloads.write_text(REPO_WORKLOADS.read_text().replace("features_table: features.account_features",
                                                            "features_table: typed.features"))
    registry = Path(local_path(models_uri(load_settings().storage_prefix))) / "churn_risk"
    v3 = json.loads((registry / "v1.json").read_text()) | {"version": "v3", "features": [
        {"name": "intent_score", "coefficient": 0.02, "impute": 50.0}]}
    (registry / "v3.json").write_text(json.dumps(v3))
    typed = ScoringRequest("r-typed", "t1", "churn_risk", "v1", "scoring", W1.isoformat(), "normal", 10)
    fine = ScoringRequest("r-fine", "t2", "churn_risk", "v3", "scoring", W1.isoformat(), "normal", 10)
    storage.write_text(layout.intake_uri, IntakeManifest(window_id_for(W1)).merged(
        [typed, fine], [], sources={"r-typed": "m-typed", "r-fine": "m-fine"}).to_json())
    op = PlanBatchesOperator(task_id="plan_batches", intake_manifest_uri=layout.intake_uri,
                             workloads_file=str(workloads))
    (out,) = op.execute({"logical_date": W1})  # type: ignore[arg-type]
    (uri,) = out["batch_manifest_uris"]
    assert [m.request_id for m in BatchManifest.from_json(storage.read_text(uri)).members] == ["r-fine"]
    reason = "model churn_risk v1 reads columns of typed.features that are not numeric: engagement_7d (string)"
    (refused,) = json.loads(storage.read_text(layout.plan_uri))["refused"]
    assert (refused["request_id"], refused["reason"]) == ("r-typed", reason)
    (dead,) = _dlq(sqs)
    assert dead["MessageAttributes"]["warpspeed_reasons"]["StringValue"] == reason
