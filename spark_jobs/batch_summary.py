"""The ``warpspeed.batch_result/v1`` summary of a scored batch, built one way for every engine.

Pure Python. Both engines build their summary here: the single-node engine
(:mod:`spark_jobs.score_arrow`) and the Spark job (``score_batch.run_batch``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from spark_jobs.score_batch import SUMMARY_SCHEMA, batch_status

MISSING_FEATURE_POLICY = "expression models impute per feature; other flavours get nulls (NaN)"


def batch_summary(
    manifest: Mapping[str, Any],
    *,
    flavours: Mapping[tuple[str, str], str],
    errors: Mapping[tuple[str, str], str],
    per_tenant: Mapping[str, tuple[int, int]],
    snapshots: tuple[int | None, int | None],
    scored_at: datetime,
    started: float,
    read_tenants: Collection[str] | None = None,
    timings: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Return the summary of a batch.

    :param flavours: (model, version) -> flavour of each model version that loaded.
    :param errors: (model, version) -> why it could not be used; its members failed.
    :param per_tenant: tenant -> (entities, entities with a missing feature) of the batch's tenants.
    :param snapshots: (features snapshot read, scores snapshot written or None).
    :param started: ``time.monotonic()`` when the batch started.
    :param read_tenants: the tenants whose features were read (default: all of the batch's); only
        they can be "without features" (a tenant whose every model failed to load is not read).
    :param timings: seconds per phase of the job, reported as ``timings_s`` when given.
    """
    members: Sequence[Mapping[str, Any]] = manifest["members"]
    results = []
    for m in members:
        accounts, missing = per_tenant.get(m["tenant_id"], (0, 0))
        key = (m["model"], m["model_version"])
        error = errors.get(key)
        results.append({
            "request_id": m["request_id"], "tenant_id": m["tenant_id"], "model": m["model"],
            "model_version": m["model_version"], "flavour": None if error else flavours[key],
            "status": "failed" if error else "scored", "error": error, "rows": 0 if error else accounts,
            "accounts_missing_features": 0 if error else missing,
        })
    tenants = sorted({m["tenant_id"] for m in members})
    read = set(tenants if read_tenants is None else read_tenants)
    summary = {
        "schema": SUMMARY_SCHEMA,
        "batch_id": manifest["batch_id"],
        "window_id": manifest["window_id"],
        "workload": manifest["workload"],
        "status": batch_status(len(errors), sum(1 for r in results if r["status"] == "scored")),
        "members": results,
        "rows": sum(r["rows"] for r in results),
        "tenants_without_features": [t for t in tenants if t in read and t not in per_tenant],
        "missing_feature_policy": MISSING_FEATURE_POLICY,
        "features_snapshot_id": snapshots[0],
        "scores_snapshot_id": snapshots[1],
        "scored_at": scored_at.isoformat(),
        "duration_s": round(time.monotonic() - started, 3),
    }
    if timings is not None:
        summary["timings_s"] = dict(timings)
    return summary
