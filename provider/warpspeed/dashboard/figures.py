"""The Warp Speed ops dashboard's figures, summarised from the ledger tables and the queue.

:func:`summarize` is pure (ledger rows in, :class:`Dashboard` out); :func:`load_dashboard` reads
``warpspeed.batch_runs``, ``warpspeed.maintenance_runs`` (if it exists) and the SQS queue depth.
:mod:`warpspeed.dashboard.page` renders the result.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

_TABLE_KEYS = ("table", "table_name", "identifier", "table_identifier")
_TIME_KEYS = ("finished_at", "ended_at", "recorded_at", "started_at", "run_at")


@dataclass(frozen=True)
class WindowRow:
    """One scoring window as the dashboard shows it."""

    window_id: str
    window_start: str
    requests: int
    failed_requests: int
    batches: int
    rows: int
    duration_s: float
    cost_usd: float
    spot_share: float
    s3_requests: int | None = None
    """S3 requests the window's steps made (``warpspeed.s3_requests``; None: not measured)."""
    s3_get_head: int | None = None
    s3_cost_usd: float = 0.0


@dataclass(frozen=True)
class TenantRow:
    """A tenant's cost over the period shown."""

    tenant_id: str
    cost_usd: float
    rows: int
    requests: int


@dataclass(frozen=True)
class QueueStatus:
    """Queue depths, or why they are unknown."""

    depth: int | None = None
    dead_letter_depth: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Dashboard:
    """Everything the page shows."""

    generated_at: str
    since: str
    queue: QueueStatus
    windows: list[WindowRow]
    top_tenants: list[TenantRow]
    batches: int = 0
    batches_on_created_clusters: int = 0
    batches_on_reused_clusters: int = 0
    clusters_created: int = 0
    clusters_used: int = 0
    instance_hours_on_demand: float = 0.0
    instance_hours_spot: float = 0.0
    cost_usd: float = 0.0
    cost_by_line: dict[str, float] = field(default_factory=dict)
    maintenance: list[dict[str, Any]] = field(default_factory=list)
    maintenance_note: str | None = None
    ledger_error: str | None = None
    s3_requests: int | None = None
    """S3 requests of the windows shown (None: not measured, e.g. no access logs ingested)."""
    s3_requests_cost_usd: float = 0.0

    @property
    def spot_share(self) -> float:
        """Return the Spot share of instance-hours."""
        total = self.instance_hours_on_demand + self.instance_hours_spot
        return self.instance_hours_spot / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (what ``/warpspeed/api/summary`` serves)."""
        return asdict(self) | {"spot_share": self.spot_share}


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    return "" if value is None else str(value)


def _num(value: Any) -> float:
    return float(value) if value is not None else 0.0


def summarize(
    batch_rows: Iterable[Mapping[str, Any]],
    *,
    queue: QueueStatus,
    maintenance_rows: Sequence[Mapping[str, Any]] | None,
    since: datetime,
    now: datetime,
    top: int = 10,
    max_windows: int = 48,
    s3_rows: Iterable[Mapping[str, Any]] = (),
) -> Dashboard:
    """Aggregate ledger rows into windows, tenants, cluster reuse, Spot share and cost.

    :param s3_rows: ``warpspeed.s3_requests`` rows (measured S3 requests per window, priced).
    """
    from warpspeed.ledger.s3_requests import per_window

    s3_by_window = per_window(s3_rows)
    by_window: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    tenants: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    lines = {"ec2": 0.0, "emr_fee": 0.0, "s3": 0.0}
    created_clusters: set[str] = set()
    used_clusters: set[str] = set()
    on_created = on_reused = 0
    od_hours = spot_hours = 0.0
    rows = list(batch_rows)
    for row in rows:
        by_window[str(row["window_id"])].append(row)
        for tenant in row.get("tenant_costs") or []:
            agg = tenants[str(tenant["tenant_id"])]
            agg[0] += _num(tenant.get("cost_usd"))
            agg[1] += _num(tenant.get("rows"))
            agg[2] += _num(tenant.get("requests"))
        lines["ec2"] += _num(row.get("cost_ec2_usd"))
        lines["emr_fee"] += _num(row.get("cost_emr_fee_usd"))
        lines["s3"] += _num(row.get("cost_s3_usd"))
        od_hours += _num(row.get("instance_hours_on_demand"))
        spot_hours += _num(row.get("instance_hours_spot"))
        cluster = str(row.get("cluster_id") or "")
        used_clusters.add(cluster)
        if row.get("cluster_created"):
            on_created += 1
            created_clusters.add(cluster)
        else:
            on_reused += 1
    windows = []
    for window_id, batch in by_window.items():
        starts = [b["started_at"] for b in batch if b.get("started_at")]
        ends = [b["finished_at"] for b in batch if b.get("finished_at")]
        w_od = sum(_num(b.get("instance_hours_on_demand")) for b in batch)
        w_spot = sum(_num(b.get("instance_hours_spot")) for b in batch)
        s3 = s3_by_window.get(window_id)
        windows.append(WindowRow(
            window_id=window_id,
            window_start=_iso(batch[0].get("window_start")),
            requests=int(sum(_num(b.get("requests")) for b in batch)),
            failed_requests=int(sum(_num(b.get("failed_requests")) for b in batch)),
            batches=len(batch),
            rows=int(sum(_num(b.get("rows")) for b in batch)),
            duration_s=(max(ends) - min(starts)).total_seconds() if starts and ends else 0.0,
            cost_usd=sum(_num(b.get("cost_total_usd")) for b in batch),
            spot_share=w_spot / (w_od + w_spot) if w_od + w_spot else 0.0,
            s3_requests=s3[0] if s3 else None, s3_get_head=s3[1] if s3 else None, s3_cost_usd=s3[2] if s3 else 0.0,
        ))
    windows.sort(key=lambda w: (w.window_start, w.window_id), reverse=True)
    top_tenants = sorted(
        (TenantRow(t, round(v[0], 6), int(v[1]), int(v[2])) for t, v in tenants.items()),
        key=lambda t: (-t.cost_usd, t.tenant_id),
    )[:top]
    maintenance, note = _latest_maintenance(maintenance_rows)
    shown = [w for w in windows[:max_windows] if w.s3_requests is not None]
    return Dashboard(
        generated_at=_iso(now), since=_iso(since), queue=queue, windows=windows[:max_windows],
        top_tenants=top_tenants, batches=len(rows), batches_on_created_clusters=on_created,
        batches_on_reused_clusters=on_reused, clusters_created=len(created_clusters),
        clusters_used=len(used_clusters), instance_hours_on_demand=od_hours, instance_hours_spot=spot_hours,
        cost_usd=sum(lines.values()), cost_by_line=lines, maintenance=maintenance, maintenance_note=note,
        s3_requests=sum(w.s3_requests or 0 for w in shown) if shown else None,
        s3_requests_cost_usd=sum(w.s3_cost_usd for w in shown),
    )


def _latest_maintenance(rows: Sequence[Mapping[str, Any]] | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return the latest maintenance run per table (any schema with a table and a time column)."""
    from warpspeed.ledger.tables import MAINTENANCE_RUNS_TABLE

    if rows is None:
        return [], f"{MAINTENANCE_RUNS_TABLE} does not exist yet (no maintenance has run)"
    if not rows:
        return [], f"{MAINTENANCE_RUNS_TABLE} is empty"
    table_key = next((k for k in _TABLE_KEYS if k in rows[0]), None)
    time_key = next((k for k in _TIME_KEYS if k in rows[0]), None)
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        name = str(row.get(table_key)) if table_key else "?"
        stamp = _iso(row.get(time_key)) if time_key else ""
        current = latest.get(name)
        if current is None or stamp >= (_iso(current.get(time_key)) if time_key else ""):
            latest[name] = row
    out = []
    for name in sorted(latest):
        row = latest[name]
        simple: dict[str, Any] = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in row.items()
                  if isinstance(v, str | int | float | bool | datetime) or v is None}
        out.append({"table": name} | {k: v for k, v in simple.items() if k != table_key})
    return out, None


# -- loaders ------------------------------------------------------------------------------------

def queue_status() -> QueueStatus:
    """Read the request queue and DLQ depths; never raise (the page says what went wrong)."""
    try:
        from warpspeed.config.settings import load_settings
        from warpspeed.hooks.sqs import SqsIntakeHook

        settings = load_settings()
        if not settings.queue_url:
            return QueueStatus(error="no queue configured ([warpspeed] queue_url)")
        hook = SqsIntakeHook(aws_conn_id=settings.aws_conn_id)
        dlq_url = settings.dead_letter_queue_url
        dlq = hook.approximate_depth(dlq_url) if dlq_url else None
        return QueueStatus(depth=hook.approximate_depth(settings.queue_url), dead_letter_depth=dlq)
    except Exception as err:
        log.warning("Queue depth unavailable: %s", err)
        return QueueStatus(error=f"{type(err).__name__}: {err}"[:300])


def load_dashboard(days: int = 7, now: datetime | None = None) -> Dashboard:
    """Read the ledger tables and the queue; build the dashboard for the last ``days`` days."""
    from warpspeed.config.settings import load_settings
    from warpspeed.ledger.tables import BATCH_RUNS_TABLE, MAINTENANCE_RUNS_TABLE, S3_REQUESTS_TABLE

    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    queue = queue_status()
    batch_rows: list[dict[str, Any]] = []
    maintenance_rows: list[dict[str, Any]] | None = None
    s3_rows: list[dict[str, Any]] = []
    ledger_error = None
    try:
        catalog = load_settings().catalog.load()
        if catalog.table_exists(BATCH_RUNS_TABLE):
            ledger = catalog.load_table(BATCH_RUNS_TABLE)
            recent = ledger.scan(row_filter=f"window_start >= '{since.isoformat()}'")
            batch_rows = recent.to_arrow().to_pylist()
        else:
            ledger_error = f"{BATCH_RUNS_TABLE} does not exist yet (no window has been published)"
        if catalog.table_exists(MAINTENANCE_RUNS_TABLE):
            maintenance_rows = catalog.load_table(MAINTENANCE_RUNS_TABLE).scan().to_arrow().to_pylist()
        if catalog.table_exists(S3_REQUESTS_TABLE):
            s3_rows = catalog.load_table(S3_REQUESTS_TABLE).scan(
                row_filter=f"window_start >= '{since.isoformat()}'").to_arrow().to_pylist()
    except Exception as err:
        log.warning("Ledger unavailable: %s", err)
        ledger_error = f"{type(err).__name__}: {err}"[:300]
    board = summarize(batch_rows, queue=queue, maintenance_rows=maintenance_rows, since=since, now=now,
                      s3_rows=s3_rows)
    if ledger_error:
        board = replace(board, ledger_error=ledger_error)
    return board
