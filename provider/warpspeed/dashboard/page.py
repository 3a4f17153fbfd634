"""Render the Warp Speed ops dashboard as one HTML page.

:func:`render_html` is pure: a :class:`~warpspeed.dashboard.figures.Dashboard` in, HTML out.
Charts are inline SVG: the page needs no network and no JavaScript.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from warpspeed.dashboard.figures import Dashboard


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
        _tile("S3 requests (measured)", "not measured" if board.s3_requests is None else
              f"{board.s3_requests:,} · {_money(board.s3_requests_cost_usd)}", "tile-s3"),
    ])
    windows_table = _table(
        ("window", "start", "requests", "failed", "batches", "rows", "duration s", "cost", "Spot",
         "S3 requests", "S3 GET+HEAD", "S3 request cost"),
        ((w.window_id, w.window_start, w.requests, w.failed_requests, w.batches, f"{w.rows:,}",
          f"{w.duration_s:.0f}", _money(w.cost_usd), f"{w.spot_share:.0%}",
          "-" if w.s3_requests is None else f"{w.s3_requests:,}",
          "-" if w.s3_get_head is None else f"{w.s3_get_head:,}",
          "-" if w.s3_requests is None else _money(w.s3_cost_usd)) for w in board.windows),
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
{bar_chart_svg(labels, [float(w.s3_requests or 0) for w in windows_chrono],
               title="S3 requests per window", fmt=lambda v: f"{v:,.0f}", color="#16a085")}
{hbar_chart_svg([t.tenant_id for t in board.top_tenants], [t.cost_usd for t in board.top_tenants],
                title="Top tenants by cost")}
</div>
<h2>Recent windows</h2>{windows_table}
<h2>Top tenants by cost</h2>{tenants_table}
<h2>Table maintenance</h2>{maintenance}
</body></html>
"""
