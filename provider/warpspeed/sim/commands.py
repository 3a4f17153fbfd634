"""``warpspeed simulate``: its arguments and how it runs (the simulator itself needs the ``sim`` extra)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add ``simulate`` to the ``warpspeed`` command's subparsers."""
    sim = sub.add_parser(
        "simulate",
        help="price a month of a request trace under per-request EMR Serverless, cluster-per-request "
             "EMR on EC2 and Warp Speed batching",
    )
    sim.add_argument("--trace", help="CSV or JSONL trace (requested_at, tenant_id, model, workload, "
                                     "estimated_accounts); default: generate one")
    sim.add_argument("--days", type=float, default=2, help="days of generated trace (scaled to a month)")
    sim.add_argument("--tenants", type=int, default=400, help="tenants in the generated trace")
    sim.add_argument("--requests-per-window", type=int, nargs="+", default=[1500, 2000], metavar="N",
                     help="requests per 30-minute window: one number or a min and max")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--prices", help="price table YAML/JSON (default: the bundled us-east-1 table)")
    sim.add_argument("--chart", default="warpspeed-simulation.png", help="PNG chart to write")
    sim.add_argument("--json", dest="json_out", help="also write the full result as JSON here")
    sim.add_argument("--workloads", help="the DAG bundle's workloads YAML (planning settings); default: "
                                         "$WARPSPEED_WORKLOADS_FILE or dags/config/workloads.yaml here")
    sim.set_defaults(run=simulate)


def simulate(args: argparse.Namespace) -> int:
    """Run the simulator with the parsed arguments."""
    try:
        from warpspeed.sim.report import run_cli
    except ImportError as err:
        print(f"warpspeed simulate needs the sim extra (pip install 'warpspeed-airflow-provider[sim]'): {err}",
              file=sys.stderr)
        return 2
    run_cli(trace_path=args.trace, days=args.days, tenants=args.tenants,
            requests_per_window=args.requests_per_window, seed=args.seed, prices_path=args.prices,
            chart=args.chart, json_out=args.json_out, workloads_file=args.workloads)
    return 0
