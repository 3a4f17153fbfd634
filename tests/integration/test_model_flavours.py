"""Bring your own model and tables: MLflow (scikit-learn) and Spark ML models through ``spark-submit``.

The feature table has its own name, tenant column, two-column entity key and feature names;
each score must equal the model's own single-process prediction on the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import DoubleType, LongType, NestedField, StringType

from warpspeed.compute.base import SparkJob
from warpspeed.compute.local.backend import LocalSparkBackend
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.config.workloads import WorkloadCatalog
from warpspeed.embedded.seed import pinned_requirements
from warpspeed.intake.schema import ScoringRequest
from warpspeed.operators.score import SCORE_SCRIPT
from warpspeed.window.manifests import BatchManifest, WindowLayout, models_uri

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

pytestmark = pytest.mark.integration

ORGS = ["org-a", "org-b", "org-c"]
INPUTS = ["clicks", "opens", "tenure_days"]
FEATURES = "crm.contact_signals"
SCORES = "crm.contact_scores"
OTHER_SCORES = "crm.other_workload_scores"


def feature_table(rows_per_org: int = 300) -> pa.Table:
    rng = np.random.default_rng(3)
    n = rows_per_org * len(ORGS)
    return pa.table({
        "org": pa.array(np.repeat(ORGS, rows_per_org), pa.string()),
        "region": pa.array(rng.choice(["eu", "us"], n), pa.string()),
        "contact_no": pa.array(np.arange(n, dtype=np.int64), pa.int64()),
        "clicks": pa.array(rng.poisson(3.0, n).astype(float)),
        "opens": pa.array(rng.normal(10.0, 4.0, n)),
        "tenure_days": pa.array(rng.uniform(0, 900, n)),
    })


def train(kind: str) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3)) * [2.0, 4.0, 300.0] + [3.0, 10.0, 450.0]
    y = (x[:, 0] * 0.5 - x[:, 1] * 0.2 + x[:, 2] / 300 + rng.normal(size=400) > 1.0).astype(int)
    model = LogisticRegression(max_iter=500) if kind == "lr" else GradientBoostingClassifier(n_estimators=20,
                                                                                           max_depth=2)
    import pandas as pd

    return model.fit(pd.DataFrame(x, columns=INPUTS), y)


def save_mlflow(model: Any, path: Path) -> None:
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    sample = pd.DataFrame(np.zeros((2, 3)), columns=INPUTS)
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(sample, model.predict_proba(sample)),
                              pyfunc_predict_fn="predict_proba", skops_trusted_types=["sklearn.tree._tree.Tree"],
                              pip_requirements=pinned_requirements())


@pytest.fixture(scope="module")
def byo(
    tmp_path_factory: pytest.TempPathFactory, spark: Any, rest_catalog_for: Callable[[Path], object]
) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("byo-home")
    rest_catalog_for(home)
    settings = WarpSpeedSettings.from_mapping({"home": str(home)})
    catalog = settings.catalog.load()
    catalog.create_namespace_if_not_exists("crm")
    rows = feature_table()
    catalog.create_table(FEATURES, schema=rows.schema).overwrite(rows)
    other = catalog.create_table(OTHER_SCORES, schema=Schema(
        NestedField(1, "org", StringType(), required=False), NestedField(2, "score", DoubleType(), required=False),
        NestedField(3, "contact_no", LongType(), required=False)))
    other.append(pa.table({"org": ["org-a"], "score": [0.5], "contact_no": pa.array([1], pa.int64())}))
    registry = home / "registry"
    models = {"lr": train("lr"), "gbm": train("gbm")}
    for name, model in models.items():
        save_mlflow(model, registry / f"contact_{name}" / "v1")

    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression as SparkLR
    from pyspark.ml.feature import VectorAssembler

    training = spark.createDataFrame(feature_table(60).to_pandas()).withColumn(
        "label", ((spark_col("clicks") * 0.4 + spark_col("opens") * 0.05) > 2.0).cast("double"))
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=INPUTS, outputCol="features"),
                                SparkLR(maxIter=20)]).fit(training)
    pipeline.write().overwrite().save(str(registry / "contact_pipeline" / "v1"))
    workloads = WorkloadCatalog.from_dict({"workloads": {"contacts": {
        "features_table": FEATURES, "entity_key": ["region", "contact_no"], "tenant_column": "org",
        "scores_table": SCORES,
        "models": {
            "contact_lr": {"flavour": "mlflow", "uri": f"{registry.as_uri()}/{{model}}/{{version}}"},
            "contact_gbm": {"flavour": "mlflow", "uri": f"{registry.as_uri()}/{{model}}/{{version}}",
                            "output_index": 1},
            "contact_pipeline": {"flavour": "spark_ml", "uri": f"{registry.as_uri()}/{{model}}/{{version}}"},
            "contact_wide": {"flavour": "mlflow", "uri": f"{registry.as_uri()}/contact_lr/{{version}}",
                             "inputs": [*INPUTS, "salary"]},
        },
    }}}, source="test workloads")
    return {"settings": settings, "workloads": workloads, "models": models, "pipeline": pipeline,
            "rows": rows}


def spark_col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col(name)


def run(byo: dict[str, Any], batch_id: str, members: list[tuple[str, str, str]]) -> tuple[Any, dict[str, Any]]:
    settings: WarpSpeedSettings = byo["settings"]
    workload = byo["workloads"]["contacts"]
    layout = WindowLayout(settings.storage_prefix, "20261121T0800Z")
    requests = tuple(
        ScoringRequest(f"{batch_id}-{i}", t, m, v, "contacts", "2026-11-21T08:00:00+00:00", estimated_accounts=300)
        for i, (t, m, v) in enumerate(members)
    )
    manifest = BatchManifest(
        batch_id, "20261121T0800Z", "contacts", requests, 300 * len(requests), models_uri(settings.storage_prefix),
        layout.summary_uri(batch_id), features_table=FEATURES, scores_table=SCORES,
        entity_key=workload.tables.entity_key, tenant_column=workload.tables.tenant_column,
        models=workload.manifest_models(models_uri(settings.storage_prefix)),
    )
    storage = settings.storage()
    storage.write_text(layout.batch_uri(batch_id), manifest.to_json())
    backend = LocalSparkBackend(settings)
    job = SparkJob(f"byo-{batch_id}", SCORE_SCRIPT, ("--batch-manifest", layout.batch_uri(batch_id)))
    (outcome,) = backend.run_jobs(backend.ensure_cluster("contacts", "scoring"), [job])
    log = Path(outcome.log_uri.removeprefix("file://")).read_text()
    assert storage.exists(layout.summary_uri(batch_id)), log[-3000:]
    return outcome, dict(json.loads(storage.read_text(layout.summary_uri(batch_id))))


def scores(byo: dict[str, Any], table: str = SCORES) -> list[dict[str, Any]]:
    rows = byo["settings"].catalog.load().load_table(table).scan().to_arrow().to_pylist()
    return sorted(rows, key=lambda r: (r["org"], r.get("model", ""), r.get("region", ""), r["contact_no"]))


def test_mlflow_and_spark_ml_scores_equal_each_models_own_predictions(byo: dict[str, Any]) -> None:
    members = [("org-a", "contact_lr", "v1"), ("org-b", "contact_lr", "v1"), ("org-b", "contact_gbm", "v1"),
               ("org-c", "contact_pipeline", "v1")]
    other_before = scores(byo, OTHER_SCORES)
    outcome, summary = run(byo, "byo-1", members)
    assert outcome.succeeded, outcome.reason
    assert summary["status"] == "succeeded"
    assert {m["flavour"] for m in summary["members"]} == {"mlflow", "spark_ml"}
    first = scores(byo)
    assert set(first[0]) == {"org", "model", "model_version", "region", "contact_no", "score", "batch_id",
                             "scored_at"}

    features = byo["rows"].to_pandas()
    expected: dict[tuple[str, str, str, int], float] = {}
    for org, model, _ in members:
        rows = features[features["org"] == org]
        if model == "contact_pipeline":
            from pyspark.ml.functions import vector_to_array
            from pyspark.sql import SparkSession

            frame = SparkSession.getActiveSession().createDataFrame(rows)  # type: ignore[union-attr]
            out = byo["pipeline"].transform(frame).select(
                "region", "contact_no", vector_to_array("probability")[1].alias("p")).toPandas()
            values = out["p"].to_numpy()
            keys = zip(out["region"], out["contact_no"], strict=True)
        else:
            values = byo["models"][model.removeprefix("contact_")].predict_proba(rows[INPUTS])[:, 1]
            keys = zip(rows["region"], rows["contact_no"], strict=True)
        expected.update({(org, model, r, int(c)): float(v) for (r, c), v in zip(keys, values, strict=True)})
    actual = {(r["org"], r["model"], r["region"], r["contact_no"]): r["score"] for r in first}
    assert actual.keys() == expected.keys()
    worst = max(abs(actual[k] - expected[k]) for k in expected)
    assert worst <= 1e-9, worst

    outcome, _ = run(byo, "byo-1", members)  # a rerun of the batch leaves identical rows
    assert outcome.succeeded
    strip = lambda rows: [{k: v for k, v in r.items() if k != "scored_at"} for r in rows]  # noqa: E731
    assert strip(scores(byo)) == strip(first)
    assert scores(byo, OTHER_SCORES) == other_before  # another workload's table is untouched


def test_missing_version_or_inputs_fail_only_their_members_and_the_batch(byo: dict[str, Any]) -> None:
    outcome, summary = run(byo, "byo-2", [("org-a", "contact_lr", "v7"), ("org-a", "contact_wide", "v1"),
                                          ("org-c", "contact_gbm", "v1"), ("org-a", "contact_pipeline", "v9")])
    assert not outcome.succeeded  # a partial batch is not recorded as succeeded
    assert "WarpSpeedModelError" in (outcome.reason or "") and "contact_lr v7 not found" in (outcome.reason or "")
    assert summary["status"] == "partial"
    errors = {m["model"]: m["error"] for m in summary["members"] if m["status"] == "failed"}
    assert set(errors) == {"contact_lr", "contact_wide", "contact_pipeline"}
    assert f"needs columns ['salary'] that {byo['settings'].catalog.name}.{FEATURES} lacks" in errors["contact_wide"]
    assert "not loadable as a PipelineModel" in errors["contact_pipeline"]
    gbm = [r for r in scores(byo) if (r["org"], r["model"]) == ("org-c", "contact_gbm")]
    assert len(gbm) == 300 and {r["batch_id"] for r in gbm} == {"byo-2"}
