"""Every metric Warp Speed sends through Airflow's ``Stats`` (StatsD or OpenTelemetry, as ``[metrics]`` says).

One place for the names and for what each counts (docs/ops.md lists them). A task sends what
its try did, so a retried task adds its retry's counts:

==========================================  =======  ===========================================
name                                        type     what (per window, from the task that knows)
==========================================  =======  ===========================================
``warpspeed.window.requests``               counter  valid requests collected (collect)
``warpspeed.window.invalid``                counter  messages refused at intake (collect)
``warpspeed.window.duplicates``             counter  re-sent or redelivered request ids (collect)
``warpspeed.window.dead_lettered``          counter  messages sent to the dead-letter queue (collect)
``warpspeed.window.refused``                counter  requests refused to the DLQ at plan time (plan)
``warpspeed.window.batches``                counter  batches recorded in the ledger (publish)
``warpspeed.window.batches_failed``         counter  of those, the batches that scored nothing
``warpspeed.window.rows_scored``            counter  rows written to the scores tables (publish)
``warpspeed.window.cost_usd``               gauge    the window's cost in USD (publish)
``warpspeed.window.close_to_publish``       timer    from the window's close to its publish (ms)
``warpspeed.window.deadline_missed``        counter  windows past their deadline (deadline alert)
``warpspeed.window.s3_requests``            counter  reserved: S3 requests of the window (issue 21)
==========================================  =======  ===========================================

Prefixed as Airflow prefixes its own (``[metrics] statsd_prefix``, default ``airflow``). With a
tagging backend (Datadog, InfluxDB, OpenTelemetry) every metric is tagged with its workload where
it has one; plain StatsD drops tags, so each name is the window's total.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

PREFIX = "warpspeed.window"
REQUESTS = f"{PREFIX}.requests"
INVALID = f"{PREFIX}.invalid"
DUPLICATES = f"{PREFIX}.duplicates"
DEAD_LETTERED = f"{PREFIX}.dead_lettered"
REFUSED = f"{PREFIX}.refused"
BATCHES = f"{PREFIX}.batches"
BATCHES_FAILED = f"{PREFIX}.batches_failed"
ROWS_SCORED = f"{PREFIX}.rows_scored"
COST_USD = f"{PREFIX}.cost_usd"
CLOSE_TO_PUBLISH = f"{PREFIX}.close_to_publish"
DEADLINE_MISSED = f"{PREFIX}.deadline_missed"
S3_REQUESTS = f"{PREFIX}.s3_requests"
"""Reserved for the S3 request count of a window (issue 21's counting); :func:`published` sends it when given."""
ALL = (REQUESTS, INVALID, DUPLICATES, DEAD_LETTERED, REFUSED, BATCHES, BATCHES_FAILED, ROWS_SCORED, COST_USD,
       CLOSE_TO_PUBLISH, DEADLINE_MISSED, S3_REQUESTS)


class IntakeCounts(Protocol):
    """What :func:`collected` reads of a collect's report (:class:`warpspeed.intake.service.IntakeReport`)."""

    @property
    def valid(self) -> int: ...
    @property
    def invalid(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def dead_lettered(self) -> int: ...


class LedgerRow(Protocol):
    """What :func:`published` reads of a ledger row (:class:`warpspeed.ledger.records.BatchRecord`)."""

    @property
    def workload(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def cost_total_usd(self) -> float: ...


def _stats() -> Any:
    from airflow.sdk.observability.stats import Stats

    return Stats


def collected(report: IntakeCounts) -> None:
    """Send what a collect did."""
    stats = _stats()
    for name, count in ((REQUESTS, report.valid), (INVALID, report.invalid), (DUPLICATES, report.duplicates),
                        (DEAD_LETTERED, report.dead_lettered)):
        if count:
            stats.incr(name, count=count)


def refused(count: int) -> None:
    """Send how many requests the plan refused to the dead-letter queue."""
    if count:
        _stats().incr(REFUSED, count=count)


def published(
    records: Iterable[LedgerRow], *, closed_at: datetime | None, published_at: datetime, s3_requests: int | None = None
) -> None:
    """Send what a publish recorded: batches, rows and cost per workload, and the close-to-publish time.

    :param closed_at: when the window closed (the sensor's record); None sends no timing.
    :param s3_requests: the window's S3 requests, when counted (issue 21).
    """
    stats = _stats()
    by_workload: dict[str, list[LedgerRow]] = {}
    for record in records:
        by_workload.setdefault(record.workload, []).append(record)
    for workload, rows in sorted(by_workload.items()):
        tags: Mapping[str, str] = {"workload": workload}
        stats.incr(BATCHES, count=len(rows), tags=tags)
        failed = sum(1 for r in rows if r.status == "failed")
        if failed:
            stats.incr(BATCHES_FAILED, count=failed, tags=tags)
        stats.incr(ROWS_SCORED, count=sum(r.rows for r in rows), tags=tags)
    stats.gauge(COST_USD, round(sum(r.cost_total_usd for rows in by_workload.values() for r in rows), 6))
    if closed_at is not None:
        stats.timing(CLOSE_TO_PUBLISH, published_at - closed_at)
    if s3_requests is not None:
        stats.incr(S3_REQUESTS, count=s3_requests)


def deadline_missed(dag_id: str) -> None:
    """Count a window that missed its deadline."""
    _stats().incr(DEADLINE_MISSED, tags={"dag_id": dag_id})
