"""The plain single-process peer of the Spark scoring job, shared by the scoring benchmarks.

What a data engineer would write without tuning anything: pyiceberg scan of the batch's
tenants, the model's own predict on the whole Arrow table, pyiceberg overwrite of the same
(tenant, model) slices of the scores table. Not a ``bench_*`` module: ``run.py`` skips it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from warpspeed.tables import FEATURES_TABLE, SCORES_TABLE


def plain_run(catalog: Any, model: str, predict: Callable[[pa.Table], Any], tenants: list[str]) -> float:
    """Read, score and overwrite ``model``'s slices of ``tenants`` in this process; return seconds."""
    from pyiceberg.expressions import And, EqualTo, In

    started = time.perf_counter()
    rows = catalog.load_table(FEATURES_TABLE).scan(row_filter=In("tenant_id", tenants)).to_arrow()
    scores = predict(rows)
    n = rows.num_rows
    out = pa.table({
        "tenant_id": rows.column("tenant_id"), "model": pa.array([model] * n, pa.string()),
        "model_version": pa.array(["v1"] * n, pa.string()), "account_id": rows.column("account_id"),
        "score": pa.array(scores, pa.float64()), "batch_id": pa.array(["plain"] * n, pa.string()),
        "scored_at": pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC")),
    })
    table = catalog.load_table(SCORES_TABLE)
    table.overwrite(out.cast(table.schema().as_arrow()),
                    overwrite_filter=And(In("tenant_id", tenants), EqualTo("model", model)))
    return time.perf_counter() - started
