"""``warpspeed simulate``: print the comparison and its assumptions, draw the chart (matplotlib)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np

from warpspeed.ledger.prices import PriceTable
from warpspeed.sim.engine import (
    DAYS_PER_MONTH,
    LABELS,
    STRATEGIES,
    SimAssumptions,
    SimulationResult,
    default_planning,
    simulate,
)
from warpspeed.sim.traces import Trace


def format_table(result: SimulationResult) -> str:
    """Return the monthly cost table as fixed-width text."""
    head = (f"{'strategy':<52} {'Spark apps/mo':>13} {'inst-h OD':>10} {'inst-h Spot':>11} "
            f"{'compute $':>11} {'EMR fee $':>10} {'S3 $':>9} {'other $':>8} {'total $/mo':>11} {'x':>6}")
    lines = [head, "-" * len(head)]
    factor = DAYS_PER_MONTH / result.trace_days
    base = result.results["serverless"].monthly_total
    for name in STRATEGIES:
        r = result.results[name]
        m = r.monthly
        lines.append(
            f"{LABELS[name]:<52} {r.spark_apps * factor:>13,.0f} "
            f"{r.instance_hours_on_demand * factor:>10,.0f} "
            f"{r.instance_hours_spot * factor:>11,.0f} {m.ec2_usd + m.serverless_usd:>11,.0f} "
            f"{m.emr_fee_usd:>10,.0f} {m.s3_usd:>9,.0f} {m.other_usd:>8,.0f} {m.total_usd:>11,.0f} "
            f"{base / m.total_usd:>6.1f}"
        )
    return "\n".join(lines)


def format_assumptions(result: SimulationResult) -> str:
    """Return every assumption as ``name = value  # why`` lines."""
    docs = _field_docs()
    scale = DAYS_PER_MONTH / result.trace_days
    out = [f"trace: {result.trace_source}; {result.windows} windows of {result.requests:,} requests "
           f"({result.rows:,} accounts) over {result.trace_days:g} days, scaled x{scale:.2f}"
           f" to a {DAYS_PER_MONTH}-day month; Warp Speed planned {result.batches:,} batches",
           f"prices: {result.price_table} (compute = EC2 or EMR Serverless; "
           "the EMR fee is not discounted on Spot)"]
    for f in fields(result.assumptions):
        note = docs.get(f.name)
        out.append(f"  {f.name} = {getattr(result.assumptions, f.name)}" + (f"  # {note}" if note else ""))
    return "\n".join(out)


def _field_docs() -> dict[str, str]:
    """Return the attribute docstrings of :class:`SimAssumptions` (first line each)."""
    import ast
    import inspect
    import itertools

    tree = ast.parse(inspect.getsource(SimAssumptions))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def write_chart(result: SimulationResult, path: str | Path) -> Path:
    """Write a PNG: monthly cost per strategy (log scale) and each one's cost structure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(STRATEGIES)
    parts = {
        "compute (EC2 / Serverless)": [
            result.results[n].monthly.ec2_usd + result.results[n].monthly.serverless_usd for n in names],
        "EMR fee": [result.results[n].monthly.emr_fee_usd for n in names],
        "S3": [result.results[n].monthly.s3_usd for n in names],
        "other (SQS, Airflow)": [result.results[n].monthly.other_usd for n in names],
    }
    totals = [result.results[n].monthly_total for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    colors = ["#c0392b", "#7f8c8d", "#27ae60"]
    labels = [LABELS[n].replace(", ", ",\n").replace(": ", ":\n") for n in names]
    left.bar(range(3), totals, color=colors)
    left.set_yscale("log")
    left.set_xticks(range(3), labels, fontsize=8)
    left.set_ylabel("$ per month (log scale)")
    left.set_title("Monthly cost")
    for i, v in enumerate(totals):
        left.text(i, v * 1.08, f"${v:,.0f}", ha="center", fontsize=9)
    bottom = np.zeros(3)
    palette = ["#2e86c1", "#f39c12", "#8e44ad", "#95a5a6"]
    for (label, values), color in zip(parts.items(), palette, strict=True):
        share = np.array(values) / np.array(totals) * 100
        right.bar(range(3), share, bottom=bottom, label=label, color=color)
        bottom += share
    right.set_xticks(range(3), labels, fontsize=8)
    right.set_ylabel("% of the strategy's bill")
    right.set_title("Where the money goes")
    right.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{result.requests:,} requests over {result.trace_days:g} days, scaled to a month: "
                 f"Warp Speed is {result.ratio_vs_serverless():.1f}x cheaper than per-request EMR Serverless",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_cli(
    *,
    trace_path: str | None,
    days: float,
    tenants: int,
    requests_per_window: Sequence[int],
    seed: int,
    prices_path: str | None,
    chart: str,
    json_out: str | None,
    workloads_file: str | None = None,
) -> SimulationResult:
    """Run ``warpspeed simulate``: simulate, print the table and assumptions, write the chart."""
    per_window = (int(requests_per_window[0]), int(requests_per_window[-1]))
    trace = (Trace.from_file(trace_path) if trace_path
             else Trace.generate(days=days, tenants=tenants, seed=seed, requests_per_window=per_window))
    result = simulate(trace, PriceTable.load(prices_path), planning=default_planning(workloads_file))
    print(format_table(result))
    print()
    print(f"sim_cost_ratio_vs_serverless = {result.ratio_vs_serverless():.2f} "
          f"(the case study: ~$22,000 -> ~$2,000 a month, 11x)")
    print()
    print("Assumptions")
    print(format_assumptions(result))
    written = write_chart(result, chart)
    print(f"\nchart: {written}")
    if json_out:
        Path(json_out).write_text(json.dumps(result.to_dict(), indent=1, default=str), encoding="utf-8")
        print(f"json: {json_out}")
    return result
