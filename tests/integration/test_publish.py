"""Publish records every workload's finished batches even when another workload failed (issue 13 item 5)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest

from tests.integration.plan_support import W1, Env, req
from warpspeed.config.settings import load_settings
from warpspeed.exceptions import WarpSpeedError
from warpspeed.hooks.iceberg import IcebergLedgerHook
from warpspeed.ledger.tables import ensure_tables
from warpspeed.operators.publish import PublishBatchesOperator
from warpspeed.storage.documents import join_uri
from warpspeed.window.manifests import BatchRun, models_uri


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest_catalog_for: Callable[[Path], object]) -> Env:
    rest_catalog_for(tmp_path / "home")
    monkeypatch.setenv("AIRFLOW__WARPSPEED__HOME", str(tmp_path / "home"))
    # these tests read and write documents in the state folder: the file:// setting
    monkeypatch.setenv("AIRFLOW__WARPSPEED__STORAGE_PREFIX", (tmp_path / "home" / "storage").as_uri())
    ensure_tables(load_settings().catalog.load())
    env = Env(tmp_path)
    for model in ("churn_risk", "intent_surge"):  # the plan refuses versions that do not exist
        shipped = resources.files("warpspeed.embedded").joinpath("models", f"{model}.v1.json")
        env.storage.write_text(join_uri(models_uri(env.prefix), model, "v1.json"), shipped.read_text("utf-8"))
    return env


def run_record(env: Env, batch_id: str, workload: str, state: str) -> str:
    layout = env.layout(W1)
    uri = layout.run_uri(batch_id)
    env.storage.write_text(uri, BatchRun(
        batch_id=batch_id, window_id=layout.window_id, workload=workload,
        batch_manifest_uri=layout.batch_uri(batch_id), summary_uri=layout.summary_uri(batch_id), backend="local",
        cluster_id="local", cluster_created=False, state=state, started_at=W1.isoformat(),
        finished_at=W1.isoformat(), run_seconds=1.0, reason=None if state == "SUCCEEDED" else "boom",
    ).to_json())
    return uri


def test_publish_records_the_other_workloads_then_fails_the_run(env: Env) -> None:
    env.collect(W1, [req("a", "t1"), req("b", "t2"), req("c", "t3", workload="intent", model="intent_surge")])
    planned = {p["workload"]: p["batch_manifest_uris"] for p in env.plan(W1)}
    batch_id = {w: [Path(u).stem for u in uris] for w, uris in planned.items()}
    scoring_runs = [run_record(env, b, "scoring", "SUCCEEDED") for b in batch_id["scoring"]]
    for b in batch_id["intent"]:  # the intent workload's score task failed: its XCom is missing
        run_record(env, b, "intent", "FAILED")
    op = PublishBatchesOperator(task_id="publish", run_uris=[scoring_runs])

    with pytest.raises(WarpSpeedError, match="intent"):
        op.execute({"logical_date": W1})  # type: ignore[arg-type]

    rows = {r["batch_id"]: r for r in IcebergLedgerHook(load_settings().catalog).read_batches()}
    assert set(batch_id["scoring"]) <= set(rows)  # the successful workload is recorded
    assert set(batch_id["intent"]) <= set(rows)  # and the failure is on the ledger too, with its reason


def test_publish_fails_when_the_plan_never_ran(env: Env) -> None:
    with pytest.raises(WarpSpeedError, match="plan"):
        PublishBatchesOperator(task_id="publish", run_uris=[]).execute({"logical_date": W1})  # type: ignore[arg-type]


def test_the_scoring_dag_publishes_whatever_upstream_did() -> None:
    import dags.warpspeed_scoring as scoring

    assert scoring.publish.trigger_rule == "all_done"
