"""Monthly cost of a case-study-like trace under three strategies (``warpspeed simulate``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

from warpspeed.sim.engine import simulate
from warpspeed.sim.traces import Trace

DAYS = float(os.environ.get("WARPSPEED_BENCH_SIM_DAYS", "2"))
"""Days of trace simulated (the size knob: the suite's smoke run uses a few windows)."""


def run() -> Iterator[dict]:
    """Simulate DAYS (two) days of ~1,750 requests per 30-min window over 400 tenants, scaled to a month."""
    result = simulate(Trace.generate(days=DAYS, seed=7))
    monthly = {k: v.monthly_total for k, v in result.results.items()}
    basis = (f"{result.requests:,} requests over {result.trace_days:g} days (400 tenants, "
             f"~1,500-2,000 per 30-min window) scaled to a month; assumptions: warpspeed simulate")
    yield {"name": "sim_cost_ratio_vs_serverless", "value": round(result.ratio_vs_serverless(), 2),
           "unit": "x", "note": "per-request EMR Serverless $/month over Warp Speed $/month "
                               f"(case study: 22k/2k = 11x); {basis}"}
    for name, label in (("serverless", "sim_monthly_usd_serverless"),
                        ("cluster_per_request", "sim_monthly_usd_cluster_per_request"),
                        ("warpspeed", "sim_monthly_usd_warpspeed")):
        yield {"name": label, "value": round(monthly[name]), "unit": "USD/month", "note": basis}
    yield {"name": "sim_warpspeed_spark_apps_ratio", "unit": "x",
           "value": round(result.results["serverless"].spark_apps
                          / result.results["warpspeed"].spark_apps, 1),
           "note": "Spark applications per request vs per Warp Speed batch (real planner, workloads.yaml)"}
