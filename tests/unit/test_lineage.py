"""Issue 25: one naming of every dataset, and the OpenLineage facets the tasks report from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.serde import Serde

from warpspeed.config.catalog import CatalogConfig
from warpspeed.intake.service import IntakeReport
from warpspeed.lineage.datasets import (
    DatasetName,
    DatasetUse,
    Lineage,
    catalog_namespace,
    iceberg_table,
    queue_dataset,
    rows_by_tenant,
    storage_dataset,
)
from warpspeed.lineage.openlineage import RUN_FACET, TENANT_ROWS_FACET, operator_lineage
from warpspeed.lineage.spark import JAR_GLOB, LISTENER_CLASS, local_listener, parent_conf, without_lineage
from warpspeed.operators.collect import intake_lineage
from warpspeed.operators.score import ScoreBatch, ScoreBatchesOperator
from warpspeed.storage.documents import LocalStorage
from warpspeed.window.manifests import WindowLayout


def test_storage_and_queue_names_follow_the_openlineage_spec() -> None:
    assert storage_dataset("s3://bkt/warpspeed/windows/w1/intake.json") == DatasetName(
        "s3://bkt", "warpspeed/windows/w1/intake.json")
    assert storage_dataset("s3a://bkt/a/folder/") == DatasetName("s3://bkt", "a/folder")
    assert storage_dataset("file:///tmp/x/plan.json") == DatasetName("file", "/tmp/x/plan.json")
    assert storage_dataset("/tmp/x/") == DatasetName("file", "/tmp/x")
    assert queue_dataset("https://sqs.eu-west-1.amazonaws.com/123456789012/warpspeed-requests") == DatasetName(
        "arn:aws:sqs:eu-west-1:123456789012", "warpspeed-requests")
    assert queue_dataset("https://us-east-2.queue.amazonaws.com/123456789012/q") == DatasetName(
        "arn:aws:sqs:us-east-2:123456789012", "q")
    assert queue_dataset("http://127.0.0.1:9324/000000000000/req-1") == DatasetName(
        "sqs://127.0.0.1:9324", "000000000000/req-1")


def test_iceberg_tables_are_named_by_catalog_and_namespace(tmp_path: Path) -> None:
    rest = CatalogConfig(kind="rest", uri="https://catalog.example.com/iceberg/")
    assert iceberg_table(rest, "scores.account_scores") == DatasetName(
        "https://catalog.example.com/iceberg", "scores.account_scores")
    glue = CatalogConfig(kind="glue", warehouse="s3://w/h", region="eu-west-1", properties={"glue.id": "1234"})
    assert iceberg_table(glue, "crm.member_scores") == DatasetName("arn:aws:glue:eu-west-1:1234",
                                                                    "table/crm/member_scores")
    sql = CatalogConfig(kind="sql", warehouse="s3://w", uri="postgresql+psycopg2://me:secret@db:5432/ice")
    assert catalog_namespace(sql) == "postgresql://db:5432/ice"  # never the password
    assert iceberg_table(None, "crm.member_scores", "lake") == DatasetName("iceberg://lake", "crm.member_scores")
    embedded = CatalogConfig.embedded_rest(tmp_path)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "rest-endpoint").write_text(json.dumps({"uri": "http://127.0.0.1:18181"}))
    assert catalog_namespace(embedded) == "http://127.0.0.1:18181"


def test_facets_carry_row_counts_tenant_rows_and_the_run() -> None:
    lineage = Lineage(
        inputs=[DatasetUse(DatasetName("s3://b", "w/batches"), rows=2)],
        outputs=[DatasetUse(DatasetName("http://cat", "scores.account_scores"), rows=30,
                            rows_by_tenant={"t1": 10, "t2": 20}),
                 DatasetUse(DatasetName("s3://b", "w/runs"))],
        run={"window_id": "20261120T2100Z"},
    )
    ol = operator_lineage(lineage)
    scores = json.loads(Serde.to_json(ol.outputs[0]))
    assert (scores["namespace"], scores["name"]) == ("http://cat", "scores.account_scores")
    assert scores["outputFacets"]["outputStatistics"]["rowCount"] == 30
    assert scores["outputFacets"][TENANT_ROWS_FACET]["rowsByTenant"] == {"t1": 10, "t2": 20}
    assert json.loads(Serde.to_json(ol.outputs[1]))["outputFacets"] == {}
    assert json.loads(Serde.to_json(ol.inputs[0]))["inputFacets"]["inputStatistics"]["rowCount"] == 2
    assert json.loads(Serde.to_json(ol.run_facets[RUN_FACET]))["details"] == {"window_id": "20261120T2100Z"}
    empty = operator_lineage(None)
    assert (empty.inputs, empty.outputs, empty.run_facets) == ([], [], {})


def test_collect_reads_the_queue_and_writes_the_manifest_and_dlq() -> None:
    report = IntakeReport(manifest_uri="s3://b/p/windows/w1/intake.json", received=7, valid=5, invalid=2,
                          dead_lettered=2, requests_in_manifest=5)
    lineage = intake_lineage("https://sqs.eu-west-1.amazonaws.com/1/req", "https://sqs.eu-west-1.amazonaws.com/1/dlq",
                             report, "w1")
    assert [(u.dataset.name, u.rows) for u in lineage.inputs] == [("req", 7)]
    assert [(u.dataset.name, u.rows) for u in lineage.outputs] == [("p/windows/w1/intake.json", 5), ("dlq", 2)]


def _summary(batch_id: str, members: list[tuple[str, str, int]]) -> dict[str, Any]:
    return {"batch_id": batch_id, "members": [{"tenant_id": t, "model": m, "rows": r, "status": "scored"}
                                              for t, m, r in members]}


def test_score_reports_features_in_and_scores_out_with_rows_per_tenant(tmp_path: Path) -> None:
    prefix = tmp_path.as_uri()
    layout = WindowLayout(prefix, "20261120T2100Z")
    storage = LocalStorage()
    batches = []
    for i, (table, members) in enumerate([
        ("scores.account_scores", [("t1", "churn", 10), ("t1", "upsell", 10), ("t2", "churn", 5)]),
        ("crm.member_scores", [("t3", "churn", 7)]),
        ("scores.account_scores", [("t4", "churn", 99)]),  # failed below: not counted
    ]):
        batch = ScoreBatch(layout.batch_uri(f"b{i}"), layout.run_uri(f"b{i}"), f"b{i}", layout.window_id, "scoring",
                           "spark", layout.summary_uri(f"b{i}"), "features.account_features", table)
        storage.write_text(batch.summary_uri, json.dumps(_summary(f"b{i}", members)))
        batches.append(batch)
    op = ScoreBatchesOperator(task_id="score", workload="scoring", batch_manifest_uris=[], clusters={})
    settings = type("S", (), {"storage_prefix": prefix, "catalog": CatalogConfig(kind="rest", uri="http://cat:8181")})
    op.__dict__.update(settings=settings(), storage=storage)
    assert op.lineage() is None  # nothing recorded yet
    op._recorded = [(batches[0], True), (batches[1], True), (batches[2], False)]
    lineage = op.lineage()
    assert lineage is not None
    assert [(u.dataset.namespace, u.dataset.name) for u in lineage.inputs] == [
        ("file", layout.batches_folder.removeprefix("file://")), ("http://cat:8181", "features.account_features")]
    outputs = {u.dataset.name: u for u in lineage.outputs}
    assert outputs["scores.account_scores"].rows_by_tenant == {"t1": 20, "t2": 5}
    assert outputs["scores.account_scores"].rows == 25
    assert outputs["crm.member_scores"].rows_by_tenant == {"t3": 7}
    assert lineage.run["succeeded"] == 2 and lineage.run["batches"] == 3
    assert rows_by_tenant([]) == {}


def test_the_spark_listener_is_off_unless_openlineage_is_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__OPENLINEAGE__TRANSPORT", raising=False)
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "True")
    assert local_listener(tmp_path) == (None, {})
    assert parent_conf({"ti": object()}) == {}
    assert without_lineage({"spark.openlineage.parentRunId": "x", "spark.sql.shuffle.partitions": "8"}) == {
        "spark.sql.shuffle.partitions": "8"}


def test_the_spark_listener_sends_to_airflows_transport_when_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (the OpenLineage provider does not cache its config under pytest)
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "False")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "warpspeed-test")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       json.dumps({"type": "http", "url": "http://127.0.0.1:9", "endpoint": "api/v1/lineage"}))
    get_openlineage_listener().adapter._client = None
    try:
        assert local_listener(tmp_path) == (None, {})  # no jar: off, with a warning
        jar = tmp_path / JAR_GLOB.replace("*", "1.53.0")
        jar.write_bytes(b"")
        found, conf = local_listener(tmp_path)
        assert found == jar
        assert conf["spark.extraListeners"] == LISTENER_CLASS
        assert conf["spark.openlineage.namespace"] == "warpspeed-test"
        assert conf["spark.openlineage.transport.type"] == "http"
        assert conf["spark.openlineage.transport.url"] == "http://127.0.0.1:9"
    finally:
        get_openlineage_listener().adapter._client = None
