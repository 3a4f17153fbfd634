"""Flavour transforms (``score_mlflow``, ``score_spark_ml``, ``score_members``) on the session's Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from spark_jobs.flavours import LoadedModel, check_inputs, load_model, pick_score
from spark_jobs.models import ModelError
from spark_jobs.scoring import score_members, slice_condition

pytest.importorskip("mlflow")
pytest.importorskip("sklearn")

ROWS = [("o1", "eu", 1, 0.5, 3.0), ("o1", "us", 2, 1.5, -1.0), ("o2", "eu", 3, -0.5, 0.0), ("o3", "eu", 4, 2.0, 1.0)]
DDL = "org string, region string, contact_no long, x1 double, x2 double"


def fitted() -> Any:
    from sklearn.linear_model import LogisticRegression

    x = pd.DataFrame({"x1": [0.0, 1.0, 2.0, -1.0, 0.5, 1.5], "x2": [1.0, 0.0, 2.0, 1.0, -1.0, 0.5]})
    return LogisticRegression().fit(x, [0, 1, 1, 0, 0, 1])


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from warpspeed.embedded.seed import pinned_requirements

    model = fitted()
    sample = pd.DataFrame({"x1": [0.0], "x2": [0.0]})
    path = tmp_path_factory.mktemp("mlflow") / "m" / "v1"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(sample, model.predict_proba(sample)),
                              pyfunc_predict_fn="predict_proba", pip_requirements=pinned_requirements())
    return f"{path.parent.as_uri()}/{{version}}"


def test_pick_score_shapes() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert pick_score(proba, None, None).tolist() == [0.8, 0.4]
    assert pick_score(proba, None, 0).tolist() == [0.2, 0.6]
    assert pick_score(np.array([0.1, 0.2]), None, None).tolist() == [0.1, 0.2]
    frame = pd.DataFrame({"no": [0.3], "yes": [0.7]})
    assert pick_score(frame, "no", None).tolist() == [0.3] and pick_score(frame, None, None).tolist() == [0.7]


def test_mlflow_members_score_like_predict_proba(spark: SparkSession, mlflow_uri: str) -> None:
    features = spark.createDataFrame(ROWS, DDL)
    loaded = load_model(spark, "fit", "v1", {"flavour": "mlflow", "uri": mlflow_uri})
    assert loaded.inputs == ("x1", "x2")
    actual = score_members(features, [("o1", "fit", "v1"), ("o2", "fit", "v1"), ("o2", "gone", "v1")],
                           {("fit", "v1"): loaded}, "org", ["region", "contact_no"])
    model = fitted()
    picked = [r for r in ROWS if r[0] in ("o1", "o2")]
    proba = model.predict_proba(pd.DataFrame([r[3:] for r in picked], columns=["x1", "x2"]))[:, 1]
    expected = spark.createDataFrame(
        [(r[0], "fit", "v1", r[1], r[2], float(p)) for r, p in zip(picked, proba, strict=True)],
        "org string, model string, model_version string, region string, contact_no long, score double",
    )
    assertDataFrameEqual(actual, expected, rtol=0, atol=1e-9)


def test_spark_ml_members_score_like_the_pipeline(spark: SparkSession, tmp_path: Path) -> None:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    features = spark.createDataFrame(ROWS, DDL)
    train = features.withColumn("label", (F.col("x1") > 1).cast("double"))
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=["x1", "x2"], outputCol="features"),
                                LogisticRegression(maxIter=5)]).fit(train)
    pipeline.write().overwrite().save(str(tmp_path / "p" / "v1"))
    loaded = load_model(spark, "p", "v1", {"flavour": "spark_ml", "uri": f"{(tmp_path / 'p').as_uri()}/{{version}}"})
    assert loaded.inputs == ("x1", "x2")
    actual = score_members(features, [("o3", "p", "v1")], {("p", "v1"): loaded}, "org", ["region", "contact_no"])
    expected = pipeline.transform(features.where("org = 'o3'")).select(
        "org", F.lit("p").alias("model"), F.lit("v1").alias("model_version"), "region", "contact_no",
        vector_to_array("probability")[1].alias("score"))
    assertDataFrameEqual(actual, expected)


def test_missing_models_and_inputs_are_refused_at_load(spark: SparkSession, mlflow_uri: str) -> None:
    with pytest.raises(ModelError, match="model fit v9 not found at"):
        load_model(spark, "fit", "v9", {"flavour": "mlflow", "uri": mlflow_uri})
    with pytest.raises(ModelError, match="not loadable as a PipelineModel"):
        load_model(spark, "p", "v1", {"flavour": "spark_ml", "uri": "file:///nonexistent/{version}"})
    wide = LoadedModel("w", "v1", "mlflow", "file:///w", ("x1", "salary"))
    with pytest.raises(ModelError, match=r"model w v1 needs columns \['salary'\] that crm.t lacks"):
        check_inputs(wide, ["x1", "x2"], "crm.t")


def test_slice_condition_on_a_custom_tenant_column(spark: SparkSession) -> None:
    df = spark.createDataFrame([("o1", "m"), ("o2", "m")], "org string, model string")
    assert [r.org for r in df.where(slice_condition([("o2", "m")], "org")).collect()] == ["o2"]
    with pytest.raises(ValueError, match="not a plain column name"):
        slice_condition([("o2", "m")], "org; drop")


def test_a_model_that_does_not_load_is_reported_by_the_executors_warm_up(
    spark: SparkSession, mlflow_uri: str, tmp_path: Path
) -> None:
    import shutil

    from spark_jobs.flavours import warm_pyfunc_models

    good = load_model(spark, "fit", "v1", {"flavour": "mlflow", "uri": mlflow_uri})
    broken_dir = tmp_path / "broken" / "v1"
    shutil.copytree(Path(mlflow_uri.removeprefix("file://").replace("{version}", "v1")), broken_dir)
    for artifact in broken_dir.iterdir():  # keep MLmodel (and its signature): only the model itself is gone
        if artifact.name != "MLmodel" and artifact.is_file():
            artifact.write_bytes(b"not a model")
    broken = load_model(spark, "broken", "v1", {"flavour": "mlflow", "uri": broken_dir.as_uri()})
    assert broken.inputs == ("x1", "x2")
    failed = warm_pyfunc_models(spark, [good.shipped_name, broken.shipped_name])
    assert set(failed) == {broken.shipped_name}
