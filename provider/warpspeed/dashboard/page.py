"""The Warp Speed ops dashboard: figures from the ledger tables, rendered as one HTML page.

Pure parts (:func:`summarize`, :func:`render_html`) turn ledger rows into the page; loaders
(:func:`load_dashboard`) read ``warpspeed.batch_runs``, ``warpspeed.maintenance_runs`` (if it
exists) and the SQS queue depth. Charts are inline SVG: the page needs no network and no
JavaScript.
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

MAINTENANCE_RUNS_TABLE = "warpspeed.maintenance_runs"
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
) -> Dashboard:
    """Aggregate ledger rows into windows, tenants, cluster reuse, Spot share and cost."""
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
        ))
    windows.sort(key=lambda w: (w.window_start, w.window_id), reverse=True)
    top_tenants = sorted(
        (TenantRow(t, round(v[0], 6), int(v[1]), int(v[2])) for t, v in tenants.items()),
        key=lambda t: (-t.cost_usd, t.tenant_id),
    )[:top]
    maintenance, note = _latest_maintenance(maintenance_rows)
    return Dashboard(
        generated_at=_iso(now), since=_iso(since), queue=queue, windows=windows[:max_windows],
        top_tenants=top_tenants, batches=len(rows), batches_on_created_clusters=on_created,
        batches_on_reused_clusters=on_reused, clusters_created=len(created_clusters),
        clusters_used=len(used_clusters), instance_hours_on_demand=od_hours, instance_hours_spot=spot_hours,
        cost_usd=sum(lines.values()), cost_by_line=lines, maintenance=maintenance, maintenance_note=note,
    )


def _latest_maintenance(rows: Sequence[Mapping[str, Any]] | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return the latest maintenance run per table (any schema with a table and a time column)."""
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
        from warpspeed.hooks.sqs_intake import SqsIntakeHook
        from warpspeed.settings import load_settings

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
    from warpspeed.settings import load_settings
    from warpspeed.tables import BATCH_RUNS_TABLE

    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    queue = queue_status()
    batch_rows: list[dict[str, Any]] = []
    maintenance_rows: list[dict[str, Any]] | None = None
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
    except Exception as err:
        log.warning("Ledger unavailable: %s", err)
        ledger_error = f"{type(err).__name__}: {err}"[:300]
    board = summarize(batch_rows, queue=queue, maintenance_rows=maintenance_rows, since=since, now=now)
    if ledger_error:
        board = replace(board, ledger_error=ledger_error)
    return board


# -- rendering ----------------------------------------------------------------------------------

def _money(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:,.4f}"


def bar_chart_svg(
    labels: Sequence[str], values: Sequence[float], *, title: str, fmt: Any = _money,
    width: int = 640, height: int = 220, color: str = "#2e86c1",
) -> str:
    """Return a vertical bar chart as inline SVG."""
    e = html.escape
    if not values:
        return f'<svg class="chart" role="img" aria-label="{e(title)}" width="{width}" height="40">' \
               f'<text x="8" y="24">{e(title)}: no data</text></svg>'
    top, left, bottom = 24, 8, 40
    plot_h = height - top - bottom
    vmax = max(values) or 1.0
    step = (width - left * 2) / len(values)
    bar_w = min(36.0, max(2.0, step * 0.7))
    parts = [f'<svg class="chart" role="img" aria-label="{e(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{left}" y="16" class="chart-title">{e(title)} '
             f'<tspan class="axis">(max {e(fmt(max(values)))})</tspan></text>']
    label_every = max(1, len(values) // 8)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / vmax
        x = left + i * step + (step - bar_w) / 2
        y = top + plot_h - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}">'
                     f'<title>{e(label)}: {e(fmt(value))}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" class="axis">{e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart_svg(labels: Sequence[str], values: Sequence[float], *, title: str, width: int = 640) -> str:
    """Return a horizontal bar chart (one row per label) as inline SVG."""
    e = html.escape
    row_h, label_w, top = 22, 150, 24
    height = top + row_h * max(1, len(values)) + 8
    vmax = max(values, default=0) or 1.0
    parts = [f'<svg class="chart" role="img" aria-label="{e(title)}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><text x="8" y="16" class="chart-title">{e(title)}</text>']
    if not values:
        parts.append(f'<text x="8" y="{top + 14}">no data</text>')
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        w = (width - label_w - 90) * value / vmax
        parts.append(f'<text x="8" y="{y + 15}" class="axis">{e(label[:22])}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="#28b463"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" class="axis">{e(_money(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def donut_svg(share: float, *, title: str, size: int = 150) -> str:
    """Return a one-value donut (e.g. the Spot share) as inline SVG."""
    r, c = size * 0.35, size / 2
    circumference = 2 * 3.141592653589793 * r
    filled = circumference * max(0.0, min(1.0, share))
    return (f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{size}" '
            f'height="{size + 20}" xmlns="http://www.w3.org/2000/svg">'
            f'<circle cx="{c}" cy="{c}" r="{r:.1f}" fill="none" stroke="#d5d8dc" stroke-width="16"/>'
            f'<circle cx="{c}" cy="{c}" r="{r:.1f}" fill="none" stroke="#f39c12" stroke-width="16" '
            f'stroke-dasharray="{filled:.1f} {circumference:.1f}" transform="rotate(-90 {c} {c})"/>'
            f'<text x="{c}" y="{c + 6}" text-anchor="middle" class="big">{share:.0%}</text>'
            f'<text x="{c}" y="{size + 14}" text-anchor="middle" class="axis">{html.escape(title)}</text>'
            '</svg>')


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px;color:#1c2833;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:20px 0 8px}
.muted{color:#717d7e;font-size:12px} .tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{border:1px solid #d5d8dc;border-radius:6px;padding:8px 12px;min-width:130px}
.tile .v{font-size:20px;font-weight:600} .tile .k{font-size:12px;color:#717d7e}
table{border-collapse:collapse;font-size:13px}
td,th{border-bottom:1px solid #eaecee;padding:3px 8px;text-align:right}
th{background:#f4f6f7} td:first-child,th:first-child{text-align:left}
.chart-title{font-size:13px;font-weight:600;fill:#1c2833} .axis{font-size:10px;fill:#566573}
.big{font-size:22px;font-weight:600;fill:#1c2833} .warn{color:#b03a2e}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
"""


def _tile(key: str, value: str, tile_id: str) -> str:
    return f'<div class="tile" id="{tile_id}"><div class="v">{html.escape(value)}</div>' \
           f'<div class="k">{html.escape(key)}</div></div>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], table_id: str) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(board: Dashboard, *, api_path: str = "api/summary") -> str:
    """Render the dashboard as one self-contained HTML page."""
    e = html.escape
    q = board.queue
    queue_value = "unknown" if q.depth is None else f"{q.depth:,}"
    windows_chrono = list(reversed(board.windows))
    labels = [w.window_start[5:16].replace("T", " ") for w in windows_chrono]
    warn = []
    if board.ledger_error:
        warn.append(f'<p class="warn" id="ledger-error">Ledger: {e(board.ledger_error)}</p>')
    if q.error:
        warn.append(f'<p class="warn" id="queue-error">Queue: {e(q.error)}</p>')
    tiles = "".join([
        _tile("queue depth", queue_value, "tile-queue"),
        _tile("dead-letter depth", "unknown" if q.dead_letter_depth is None else f"{q.dead_letter_depth:,}",
              "tile-dlq"),
        _tile(f"windows since {board.since[:10]}", f"{len(board.windows):,}", "tile-windows"),
        _tile("batches", f"{board.batches:,}", "tile-batches"),
        _tile("clusters created / used", f"{board.clusters_created} / {board.clusters_used}",
              "tile-clusters"),
        _tile("batches on reused clusters", f"{board.batches_on_reused_clusters:,}", "tile-reused"),
        _tile("Spot share of instance-hours", f"{board.spot_share:.0%}", "tile-spot"),
        _tile("cost in period", _money(board.cost_usd), "tile-cost"),
    ])
    windows_table = _table(
        ("window", "start", "requests", "failed", "batches", "rows", "duration s", "cost", "Spot"),
        ((w.window_id, w.window_start, w.requests, w.failed_requests, w.batches, f"{w.rows:,}",
          f"{w.duration_s:.0f}", _money(w.cost_usd), f"{w.spot_share:.0%}") for w in board.windows),
        "windows",
    )
    tenants_table = _table(
        ("tenant", "cost", "rows", "requests"),
        ((t.tenant_id, _money(t.cost_usd), f"{t.rows:,}", t.requests) for t in board.top_tenants),
        "tenants",
    )
    if board.maintenance:
        keys = list(dict.fromkeys(k for row in board.maintenance for k in row))[:8]
        cells = ([row.get(k, "") for k in keys] for row in board.maintenance)
        maintenance = _table(keys, cells, "maintenance")
    else:
        maintenance = f'<p id="maintenance" class="muted">{e(board.maintenance_note or "no data")}</p>'
    lines = " · ".join(f"{k} {_money(v)}" for k, v in board.cost_by_line.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Warp Speed</title>
<meta http-equiv="refresh" content="60"><style>{_CSS}</style></head>
<body>
<h1>Warp Speed</h1>
<div class="muted">Batched multi-tenant scoring · generated {e(board.generated_at)} ·
period since {e(board.since)} · <a href="{e(api_path)}">JSON</a></div>
{"".join(warn)}
<h2>Now</h2><div class="tiles">{tiles}</div>
<h2>Cost</h2><div class="muted">{e(lines)}</div>
<div class="row">
{bar_chart_svg(labels, [w.cost_usd for w in windows_chrono], title="Cost per window")}
{donut_svg(board.spot_share, title="Spot share")}
</div>
<div class="row">
{bar_chart_svg(labels, [float(w.requests) for w in windows_chrono],
               title="Requests per window", fmt=lambda v: f"{v:,.0f}", color="#8e44ad")}
{hbar_chart_svg([t.tenant_id for t in board.top_tenants], [t.cost_usd for t in board.top_tenants],
                title="Top tenants by cost")}
</div>
<h2>Recent windows</h2>{windows_table}
<h2>Top tenants by cost</h2>{tenants_table}
<h2>Table maintenance</h2>{maintenance}
</body></html>
"""
