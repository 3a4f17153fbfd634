"""The plain single-process peer of the Spark scoring job, shared by the scoring benchmarks.

What a data engineer would write without tuning anything: pyiceberg scan of the batch's
tenants, the model's own predict on the whole Arrow table, pyiceberg overwrite of the same
(tenant, model) slices of the scores table. :func:`side_by_side` alternates the peer and the
Spark job, so both are measured in the same conditions, each warm after its first run. Not a
``bench_*`` module: ``run.py`` skips it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from warpspeed.ledger.tables import FEATURES_TABLE, SCORES_TABLE


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


@dataclass(frozen=True)
class SideBySide:
    """Alternating runs of the plain peer and the Spark job: the first pair and the steady ones.

    ``plain_s`` and ``spark`` are what later windows see (the warm engine stays up across windows):
    each side's median of runs 2..n. ``first_spark`` is the engine's first batch of this job, beside
    the peer's first run ``first_plain_s``.
    """

    first_plain_s: float
    first_spark: tuple[Any, dict]
    plain_s: float
    spark: tuple[Any, dict]
    """(outcome, result summary) of the Spark run with the median ``duration_s``."""

    @staticmethod
    def rate(summary: dict) -> float:
        """Return a Spark run's rows per second by its own timing (JVM and session start excluded)."""
        return float(summary["rows"]) / float(summary["duration_s"])

    @property
    def ratio(self) -> float:
        """Return the steady Spark rate over the steady plain rate (same rows on both sides)."""
        return self.rate(self.spark[1]) / (self.spark[1]["rows"] / self.plain_s)

    @property
    def first_ratio(self) -> float:
        """Return the first runs' Spark rate over the plain rate."""
        return self.rate(self.first_spark[1]) / (self.first_spark[1]["rows"] / self.first_plain_s)


def side_by_side(plain: Callable[[], float], spark: Callable[[str], tuple[Any, dict]], steady: int) -> SideBySide:
    """Run ``plain`` and ``spark`` alternately ``1 + steady`` times each (plain first) and pair them up.

    :param plain: one run of the peer; returns its seconds.
    :param spark: one run of the Spark job under the given run name; returns (outcome, summary).
    """
    runs = []
    for attempt in ["first", *(f"run{i + 2}" for i in range(steady))]:
        plain_s = plain()
        runs.append((plain_s, spark(attempt)))
    (first_plain_s, first_spark), rest = runs[0], runs[1:]
    median_spark = sorted((r[1] for r in rest), key=lambda s: s[1]["duration_s"])[len(rest) // 2]
    return SideBySide(first_plain_s, first_spark, statistics.median(p for p, _ in rest), median_spark)
