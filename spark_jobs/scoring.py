"""Pure scoring transforms: ``DataFrame -> DataFrame``, one per model flavour.

Expression models compile to Spark SQL; MLflow models score in Arrow batches
(``mapInArrow``, the model loaded once per Python worker); Spark ML pipelines transform.
Every transform returns ``<tenant>, model, model_version, <entity key...>, score``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from spark_jobs.flavours import LoadedModel, cached_pyfunc, pick_score
from spark_jobs.models import LogisticModel

SCORE_COLUMNS = ("tenant_id", "model", "model_version", "account_id", "score")


def model_expression(model: LogisticModel) -> Column:
    """Return the Spark expression computing ``model``'s score from feature columns."""
    z: Column = F.lit(model.intercept)
    for term in model.terms:
        x = F.coalesce(F.col(term.name).cast("double"), F.lit(term.impute))
        if term.transform == "log1p":
            x = F.log1p(x)
        elif term.transform == "standardize":
            x = (x - F.lit(term.mean)) / F.lit(term.std)
        z = z + F.lit(term.coefficient) * x
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-z))


def score_columns(tenant_column: str = "tenant_id", entity_key: Sequence[str] = ("account_id",)) -> list[str]:
    """Return the columns every scoring transform returns, in the scores table's order."""
    return [tenant_column, "model", "model_version", *entity_key, "score"]


def score_accounts(
    features: DataFrame,
    members: DataFrame,
    models: Mapping[tuple[str, str], LogisticModel],
    tenant_column: str = "tenant_id",
    entity_key: Sequence[str] = ("account_id",),
) -> DataFrame:
    """Score every entity of each member tenant with the member's expression model version.

    :param features: features, one row per (tenant, entity key).
    :param members: (tenant, model, model_version) to score; small, so broadcast.
    :param models: (model, version) -> model; members whose model is absent are not scored.
    """
    columns = score_columns(tenant_column, entity_key)
    if not models:
        return features.select(
            F.col(tenant_column), F.lit(None).cast("string").alias("model"),
            F.lit(None).cast("string").alias("model_version"), *entity_key, F.lit(None).cast("double").alias("score"),
        ).limit(0)
    def is_member_of(key: tuple[str, str]) -> Column:
        return (F.col("model") == key[0]) & (F.col("model_version") == key[1])

    (first_key, first_model), *rest = models.items()
    score = F.when(is_member_of(first_key), model_expression(first_model))
    for key, model in rest:
        score = score.when(is_member_of(key), model_expression(model))
    joined = features.join(F.broadcast(members), on=tenant_column, how="inner")
    return joined.select(*columns[:-1], score.alias("score")).where(F.col("score").isNotNull())


def score_mlflow(
    features: DataFrame, loaded: LoadedModel, tenant_column: str, entity_key: Sequence[str]
) -> DataFrame:
    """Score ``features`` with a shipped MLflow pyfunc model in Arrow batches (``mapInArrow``).

    Key columns stay Arrow arrays end to end (no Python string objects); only the model's
    inputs become a pandas DataFrame for ``predict``. The prediction is reduced to one float
    per row by :func:`pick_score`; the model is loaded once per Python worker process
    (:func:`cached_pyfunc`).
    """
    keys = [tenant_column, *entity_key]
    inputs = list(loaded.inputs)
    name, column, index = loaded.shipped_name, loaded.output_column, loaded.output_index
    if name is None:
        raise ValueError(f"model {loaded.model} {loaded.version} was not shipped to the executors")
    frame = features.select(*keys, *[c for c in inputs if c not in keys])
    schema = StructType([*(f for f in frame.schema.fields if f.name in keys), StructField("score", DoubleType())])
    out_names = [*keys, "score"]

    def predict(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        model = cached_pyfunc(name)
        for batch in batches:
            if batch.num_rows:
                scores = pick_score(model.predict(batch.select(inputs).to_pandas()), column, index)
                arrays = [batch.column(k) for k in keys]
                yield pa.RecordBatch.from_arrays([*arrays, pa.array(scores, pa.float64())], names=out_names)

    return _label(frame.mapInArrow(predict, schema), loaded, tenant_column, entity_key)


def score_spark_ml(
    features: DataFrame, loaded: LoadedModel, tenant_column: str, entity_key: Sequence[str]
) -> DataFrame:
    """Score ``features`` with a Spark ML pipeline; the score is its output column (a vector's element)."""
    from pyspark.ml.functions import vector_to_array

    out = loaded.pipeline.transform(features)
    column = loaded.output_column or "probability"
    field = out.schema[column]
    if field.dataType.typeName() in ("double", "float", "integer", "long"):
        score = F.col(column).cast("double")
    else:
        score = vector_to_array(F.col(column)).getItem(1 if loaded.output_index is None else loaded.output_index)
    return _label(out.select(tenant_column, *entity_key, score.alias("score")), loaded, tenant_column, entity_key)


def _label(scored: DataFrame, loaded: LoadedModel, tenant_column: str, entity_key: Sequence[str]) -> DataFrame:
    return scored.select(
        tenant_column, F.lit(loaded.model).alias("model"), F.lit(loaded.version).alias("model_version"),
        *entity_key, "score",
    )


def score_members(
    features: DataFrame,
    members: Sequence[tuple[str, str, str]],
    loaded: Mapping[tuple[str, str], LoadedModel],
    tenant_column: str = "tenant_id",
    entity_key: Sequence[str] = ("account_id",),
) -> DataFrame:
    """Score each (tenant, model, version) member whose model loaded, whatever its flavour.

    Expression models run together in one pass; each other (model, version) scores the rows of
    its own member tenants. Members whose model is not in ``loaded`` are skipped.
    """
    ok = [m for m in members if (m[1], m[2]) in loaded]
    spark = features.sparkSession
    expressions = {k: v.expression for k, v in loaded.items() if v.expression is not None}
    expr_members = [m for m in ok if (m[1], m[2]) in expressions]
    members_df = spark.createDataFrame(
        expr_members, f"`{tenant_column}` string, model string, model_version string"
    )
    parts = [score_accounts(features, members_df, expressions, tenant_column, entity_key)]
    for key, model in sorted(loaded.items()):
        if model.expression is not None:
            continue
        tenants = sorted({t for t, m, v in ok if (m, v) == key})
        if not tenants:
            continue
        rows = features.where(F.col(tenant_column).isin(tenants))
        scorer = score_mlflow if model.flavour == "mlflow" else score_spark_ml
        parts.append(scorer(rows, model, tenant_column, entity_key))
    return reduce(DataFrame.unionByName, parts)


def missing_feature_counts(
    features: DataFrame, feature_columns: Sequence[str], tenant_column: str = "tenant_id"
) -> DataFrame:
    """Return per tenant: entities, and entities with at least one missing feature."""
    any_missing = reduce(lambda a, b: a | b, [F.col(c).isNull() for c in feature_columns], F.lit(False))
    return features.groupBy(tenant_column).agg(
        F.count(F.lit(1)).alias("accounts"),
        F.sum(F.when(any_missing, 1).otherwise(0)).alias("accounts_missing_features"),
    )


def slice_condition(pairs: Sequence[tuple[str, str]], tenant_column: str = "tenant_id") -> str:
    """Return the SQL predicate selecting exactly these (tenant, model) slices.

    Tenant ids and model names are validated against strict patterns at intake, and quotes
    are escaped here as well, so the predicate is safe to embed. ``tenant_column`` is a plain
    column name (validated by the workload config) and is backquoted.
    """
    if not tenant_column.replace("_", "").isalnum():
        raise ValueError(f"tenant column {tenant_column!r} is not a plain column name")
    if not pairs:
        return "false"

    def quote(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " OR ".join(
        f"(`{tenant_column}` = {quote(t)} AND model = {quote(m)})" for t, m in sorted(set(pairs))
    )
