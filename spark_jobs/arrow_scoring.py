"""Pure transforms of the single-node Arrow engine: ``pyarrow.Table -> pyarrow.Table``.

The Spark job's semantics, row for row (see :mod:`spark_jobs.scoring`):

- an expression model is ``1 / (1 + exp(-z))`` with ``z = intercept + c1 * t1(x1) + c2 * t2(x2)
  ...`` summed in that order; only a *null* feature is imputed (Spark's ``coalesce``), a NaN
  stays NaN; ``log1p`` of a value <= -1 is null in Spark SQL, and a row whose score is null is
  dropped;
- an MLflow pyfunc model gets the member tenants' rows, its inputs as a pandas DataFrame in
  signature order, and :func:`spark_jobs.flavours.pick_score` picks the score; NaN scores stay;
- the per-tenant counts treat null (not NaN) as missing, like Spark's ``isNull``.

Spark's ``exp``/``log1p`` (Java ``StrictMath``) and NumPy's agree to about 1e-15.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_jobs.flavours import SINGLE_NODE_FLAVOURS, LoadedModel, pick_score, unknown_flavour
from spark_jobs.models import LogisticModel


def expression_scores(rows: pa.Table, model: LogisticModel) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(scores, valid)`` of ``model`` over ``rows``; ``valid`` is False where Spark's score is null."""
    count = rows.num_rows
    valid = np.ones(count, dtype=bool)
    z: Any = np.full(count, model.intercept, dtype="float64")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for term in model.terms:
            column = pc.cast(rows.column(term.name), pa.float64())
            x = column.fill_null(term.impute).to_numpy().astype("float64", copy=False)
            if term.transform == "log1p":
                valid &= ~(x <= -1.0)  # Spark SQL: log1p(x) is null for x <= -1 (NaN passes)
                x = np.log1p(np.where(x <= -1.0, 0.0, x))
            elif term.transform == "standardize":
                x = (x - term.mean) / term.std
            z = z + term.coefficient * x
        scores = 1.0 / (1.0 + np.exp(-z))
    return scores, valid


def _labelled(rows: pa.Table, model: str, version: str, scores: np.ndarray, keys: Sequence[str]) -> pa.Table:
    """Return ``<tenant>, model, model_version, <entity key...>, score`` (the scores table's order)."""
    tenant, *entity = keys
    n = rows.num_rows
    return pa.table({
        tenant: rows.column(tenant),
        "model": pa.array([model] * n, pa.string()) if n else pa.array([], pa.string()),
        "model_version": pa.array([version] * n, pa.string()) if n else pa.array([], pa.string()),
        **{k: rows.column(k) for k in entity},
        "score": pa.array(scores, pa.float64()),
    })


def rows_of(features: pa.Table, tenant_column: str, tenants: Iterable[str]) -> pa.Table:
    """Return the rows of ``features`` whose tenant is one of ``tenants`` (a null tenant never matches)."""
    mask = pc.is_in(features.column(tenant_column), value_set=pa.array(sorted(set(tenants)), pa.string()))
    return features.filter(pc.fill_null(mask, False))


def score_model(
    rows: pa.Table, loaded: LoadedModel, keys: Sequence[str], pyfunc: Any = None
) -> pa.Table:
    """Score ``rows`` (one model version's member tenants) with an expression or MLflow model.

    Raise :class:`~spark_jobs.models.ModelError` for any other flavour: no flavour is scored as another.
    """
    if loaded.flavour not in SINGLE_NODE_FLAVOURS:
        raise unknown_flavour(loaded.model, loaded.version, loaded.flavour, SINGLE_NODE_FLAVOURS)
    if loaded.expression is not None:
        scores, valid = expression_scores(rows, loaded.expression)
        if not valid.all():
            rows, scores = rows.filter(pa.array(valid)), scores[valid]
        return _labelled(rows, loaded.model, loaded.version, scores, keys)
    if pyfunc is None:
        raise ValueError(f"model {loaded.model} {loaded.version} ({loaded.flavour}) has no loaded pyfunc")
    scores = np.empty(0, dtype="float64")
    if rows.num_rows:
        prediction = pyfunc.predict(rows.select(list(loaded.inputs)).to_pandas())
        scores = pick_score(prediction, loaded.output_column, loaded.output_index)
    return _labelled(rows, loaded.model, loaded.version, scores, keys)


def score_members(
    features: pa.Table,
    members: Sequence[tuple[str, str, str]],
    loaded: Mapping[tuple[str, str], LoadedModel],
    tenant_column: str,
    entity_key: Sequence[str],
    *,
    pyfuncs: Mapping[tuple[str, str], Any] | None = None,
) -> pa.Table | None:
    """Score each (tenant, model, version) member whose model loaded; None when none did.

    Each model version scores the rows of its own member tenants; the parts are concatenated
    in (model, version) order.
    """
    keys = [tenant_column, *entity_key]
    parts = []
    for key, model in sorted(loaded.items()):
        tenants = {t for t, m, v in members if (m, v) == key}
        if tenants:
            part = score_model(rows_of(features, tenant_column, tenants), model, keys, (pyfuncs or {}).get(key))
            parts.append(part)
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]


def missing_feature_counts(
    features: pa.Table, feature_columns: Sequence[str], tenant_column: str
) -> dict[str, tuple[int, int]]:
    """Return tenant -> (entities, entities with at least one null feature)."""
    if features.num_rows == 0:
        return {}
    missing = reduce(
        pc.or_, [pc.is_null(features.column(c)) for c in feature_columns], pa.repeat(False, features.num_rows)
    )
    frame = pa.table({"tenant": features.column(tenant_column), "missing": pc.cast(missing, pa.int64())})
    grouped = frame.group_by("tenant").aggregate([("missing", "count"), ("missing", "sum")])
    return {
        t: (int(n), int(m))
        for t, n, m in zip(grouped.column("tenant").to_pylist(), grouped.column("missing_count").to_pylist(),
                           grouped.column("missing_sum").to_pylist(), strict=True)
        if t is not None
    }


def with_batch_columns(scored: pa.Table, batch_id: str, scored_at: Any, schema: pa.Schema) -> pa.Table:
    """Add ``batch_id`` and ``scored_at`` and cast to the scores table's Arrow schema."""
    n = scored.num_rows
    table = scored.append_column("batch_id", pa.array([batch_id] * n, pa.string())).append_column(
        "scored_at", pa.array([scored_at] * n, pa.timestamp("us", tz="UTC"))
    )
    return table.select(schema.names).cast(schema)
