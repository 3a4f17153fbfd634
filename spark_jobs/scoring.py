"""Pure scoring transforms: ``DataFrame -> DataFrame``, one per model flavour.

Expression models compile to Spark SQL; MLflow models score in Arrow batches
(``mapInArrow``, the model loaded once per Python worker); Spark ML pipelines transform.
Every transform returns ``<tenant>, model, model_version, <entity key...>, score``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from spark_jobs.flavours import LoadedModel, cached_pyfunc, pick_score, unknown_flavour
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


def score_with_one_expression(
    features: DataFrame, key: tuple[str, str], model: LogisticModel, tenant_column: str = "tenant_id",
    entity_key: Sequence[str] = ("account_id",),
) -> DataFrame:
    """Score every row of ``features`` with one expression model version ``key`` = (model, version).

    What :func:`score_accounts` returns when every member tenant of ``features`` runs this one
    version, without its per-row join with the members and model comparisons.
    """
    return features.select(
        tenant_column, F.lit(key[0]).alias("model"), F.lit(key[1]).alias("model_version"),
        *entity_key, model_expression(model).alias("score"),
    ).where(F.col("score").isNotNull())


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


PER_MODEL_SCORERS: Mapping[str, Callable[[DataFrame, LoadedModel, str, Sequence[str]], DataFrame]] = {
    "mlflow": score_mlflow,
    "spark_ml": score_spark_ml,
}
"""The transform of each flavour scored one (model, version) at a time; ``expression`` models
score together (:func:`score_accounts`). With ``expression`` these are exactly
:data:`spark_jobs.flavours.FLAVOURS`."""


def scorer_for(loaded: LoadedModel) -> Callable[[DataFrame, LoadedModel, str, Sequence[str]], DataFrame]:
    """Return the transform scoring ``loaded`` alone; raise ``ModelError`` for a flavour without one."""
    scorer = PER_MODEL_SCORERS.get(loaded.flavour)
    if scorer is None:
        raise unknown_flavour(loaded.model, loaded.version, loaded.flavour, tuple(PER_MODEL_SCORERS))
    return scorer


def _label(scored: DataFrame, loaded: LoadedModel, tenant_column: str, entity_key: Sequence[str]) -> DataFrame:
    return scored.select(
        tenant_column, F.lit(loaded.model).alias("model"), F.lit(loaded.version).alias("model_version"),
        *entity_key, "score",
    )


def members_frame(spark: Any, members: Sequence[tuple[str, str, str]], tenant_column: str = "tenant_id") -> DataFrame:
    """Return (tenant, model, model_version) rows as a DataFrame of literals.

    Built in the JVM (``inline`` of a JSON literal): ``createDataFrame`` of a Python list would
    start Python workers just to unpickle a few rows (about 4 s of a loaded 2-core run).
    """
    schema = f"array<struct<`{tenant_column}`: string, model: string, model_version: string>>"
    rows = [{tenant_column: t, "model": m, "model_version": v} for t, m, v in members]
    # one JSON literal instead of a Column per value: a few JVM calls whatever the batch size
    return spark.range(1).select(F.inline(F.from_json(F.lit(json.dumps(rows)), schema)))


def score_members(
    features: DataFrame,
    members: Sequence[tuple[str, str, str]],
    loaded: Mapping[tuple[str, str], LoadedModel],
    tenant_column: str = "tenant_id",
    entity_key: Sequence[str] = ("account_id",),
    *,
    observe: Callable[[DataFrame], DataFrame] | None = None,
) -> DataFrame:
    """Score each (tenant, model, version) member whose model loaded, whatever its flavour.

    Expression models run together in one pass over their member tenants' rows; each other
    (model, version) scores the rows of its own member tenants. Members whose model is not in
    ``loaded`` are skipped. ``observe``, if given, wraps each part's input rows (after its tenant
    filter, so Iceberg still prunes partitions), e.g. to count them while they are scored.
    """
    ok = [m for m in members if (m[1], m[2]) in loaded]
    spark = features.sparkSession
    expressions = {k: v.expression for k, v in loaded.items() if v.expression is not None}
    expr_members = [m for m in ok if (m[1], m[2]) in expressions]
    expr_tenants = sorted({t for t, _, _ in expr_members})
    parts = []
    if expr_tenants or not ok:
        rows = features.where(F.col(tenant_column).isin(expr_tenants))
        rows = observe(rows) if observe and expr_tenants else rows
        used = {(m, v) for _, m, v in expr_members}
        if len(used) == 1:  # the usual batch: one version scores every row, no join with the members
            (key,) = used
            parts.append(score_with_one_expression(rows, key, expressions[key], tenant_column, entity_key))
        else:
            members_df = members_frame(spark, expr_members, tenant_column)
            parts.append(score_accounts(rows, members_df, expressions, tenant_column, entity_key))
    for key, model in sorted(loaded.items()):
        if model.expression is not None:
            continue
        tenants = sorted({t for t, m, v in ok if (m, v) == key})
        if not tenants:
            continue
        rows = features.where(F.col(tenant_column).isin(tenants))
        parts.append(scorer_for(model)(observe(rows) if observe else rows, model, tenant_column, entity_key))
    return reduce(DataFrame.unionByName, parts)


def any_missing(feature_columns: Sequence[str]) -> Column:
    """Return a column that is true where any of ``feature_columns`` is null."""
    return reduce(lambda a, b: a | b, [F.col(c).isNull() for c in feature_columns], F.lit(False))


def missing_feature_counts(
    features: DataFrame, feature_columns: Sequence[str], tenant_column: str = "tenant_id"
) -> DataFrame:
    """Return per tenant: entities, and entities with at least one missing feature."""
    return features.groupBy(tenant_column).agg(
        F.count(F.lit(1)).alias("accounts"),
        F.sum(F.when(any_missing(feature_columns), 1).otherwise(0)).alias("accounts_missing_features"),
    )


def tenant_key(tenant: Column) -> Column:
    """Return the small integer key of a tenant id that :func:`tenant_count_metrics` counts by.

    Spark's 32-bit ``hash`` shifted right by 6 bits: below 2**25 in magnitude, so a histogram's
    weighted means stay exact in float64 for up to 2**28 rows per tenant.
    """
    return F.shiftright(F.hash(tenant), 6)


def tenant_keys(spark: Any, tenants: Sequence[str]) -> dict[str, int]:
    """Return tenant -> :func:`tenant_key`, from Spark's own Murmur3 function, without a Spark job."""
    jvm = spark.sparkContext._jvm
    murmur3 = jvm.org.apache.spark.sql.catalyst.expressions.Murmur3HashFunction
    string_type = jvm.org.apache.spark.sql.types.DataTypes.StringType
    utf8 = jvm.org.apache.spark.unsafe.types.UTF8String
    # F.hash's seed is 42; Python's >> on a negative int is arithmetic, like Spark's shiftright
    return {t: int(murmur3.hash(utf8.fromString(t), string_type, 42)) >> 6 for t in tenants}


#: Columns :func:`observe_tenant_counts` adds for the metric and drops again.
COUNT_KEY, MISSING_KEY = "__warpspeed_count_key", "__warpspeed_missing_key"


def tenant_count_metrics(tenants: int) -> list[Column]:
    """Return aggregate columns counting rows and rows with a missing feature per tenant, in one pass.

    For ``DataFrame.observe``, which takes aggregates without grouping: ``histogram_numeric``
    of :func:`tenant_key` (column ``COUNT_KEY``; ``MISSING_KEY`` is the key of rows with a
    missing feature, else null) with at least as many bins as distinct tenants keeps one exact
    (key, count) bin per tenant (bins only merge when there are more keys than bins, and equal
    keys merge first). Decode with :func:`decode_tenant_counts`.
    """
    bins = F.lit(max(2, tenants))
    return [
        F.to_json(F.histogram_numeric(F.col(COUNT_KEY), bins)).alias("accounts"),
        F.to_json(F.histogram_numeric(F.col(MISSING_KEY), bins)).alias("accounts_missing_features"),
    ]


def observe_tenant_counts(
    rows: DataFrame, observation: Any, tenant_column: str, feature_columns: Sequence[str], tenants: int
) -> DataFrame:
    """Return ``rows`` unchanged, counted per tenant by ``observation`` as they pass (one pass).

    The keys are projected first, so they are computed in the scan's generated code; the
    metric's own per-row work is then only the histograms' update (an observed aggregate's
    inputs are otherwise evaluated row by row by the interpreter).
    """
    key = tenant_key(F.col(tenant_column))
    keyed = rows.withColumns({COUNT_KEY: key, MISSING_KEY: F.when(any_missing(feature_columns), key)})
    return keyed.observe(observation, *tenant_count_metrics(tenants)).drop(COUNT_KEY, MISSING_KEY)


def decode_tenant_counts(metrics: Mapping[str, Any], keys: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Return tenant -> (rows, rows with a missing feature) from :func:`tenant_count_metrics`' values.

    :param keys: tenant -> its :func:`tenant_key` (distinct per tenant); tenants without rows are left out.
    """
    by_key = {key: tenant for tenant, key in keys.items()}
    if len(by_key) != len(keys):
        raise ValueError("tenant keys collide; count with missing_feature_counts instead")

    def totals(name: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for point in json.loads(metrics.get(name) or "[]"):
            tenant = by_key[int(point["x"])]
            out[tenant] = out.get(tenant, 0) + int(point["y"])
        return out

    accounts, missing = totals("accounts"), totals("accounts_missing_features")
    return {tenant: (n, missing.get(tenant, 0)) for tenant, n in accounts.items()}


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
