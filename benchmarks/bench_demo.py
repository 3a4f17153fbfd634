"""``demo_window_seconds``: how long the DAG run of ``make demo``'s window takes.

Runs :func:`warpspeed.embedded.demo.run_demo` (``airflow dags test warpspeed_scoring`` for the
window that just ended: 20 tenants, 50 requests, 4 batches over two workloads) on a scratch
state folder and reads the DAG run's own span from its log: from "Created dag run" to
"Marking run ... successful" (the ``airflow`` command's start-up and DAG parsing before it are
not part of the run). Twice, side by side: ``cold``, nothing warm beforehand (as ``make demo``
runs: a batch routed to Spark starts the warm local Spark engine inside the run), then the same
window again with whatever the first run left running (as every window after the first one of
``make airflow``).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from warpspeed.compute.local.engine import engine_log_path, read_handle, stop_engine
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.demo import run_demo
from warpspeed.embedded.stack import embedded_stack

REPO_ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(r"^(\S+Z) ")
TENANTS = int(os.environ.get("WARPSPEED_BENCH_DEMO_TENANTS", "20"))
REQUESTS = int(os.environ.get("WARPSPEED_BENCH_DEMO_REQUESTS", "50"))
"""``make demo``'s window (the size knobs: the suite's smoke run uses a few requests)."""


def dag_run_seconds(log_path: Path) -> float:
    """Return the span of the DAG run in an ``airflow dags test`` log."""
    created = finished = None
    for line in log_path.read_text(encoding="utf-8").splitlines():
        match = STAMP.match(line)
        if match and "Created dag run." in line:
            created = datetime.fromisoformat(match.group(1))
        elif match and "Marking run" in line and "successful" in line:
            finished = datetime.fromisoformat(match.group(1))
    if created is None or finished is None:
        raise RuntimeError(f"no successful DAG run in {log_path}")
    return (finished - created).total_seconds()


def engine_starts(home: Path) -> int:
    """Return how many warm engines have started in ``home`` (from the engine's log)."""
    path = engine_log_path(home)
    return path.read_text(encoding="utf-8", errors="replace").count("warm Spark engine pid") if path.exists() else 0


def run() -> Iterator[dict]:
    """Run the demo's window with a cold engine, then again on a warm one; report both DAG runs."""
    os.environ.setdefault("WARPSPEED_DAGS_FOLDER", str(REPO_ROOT / "dags"))
    os.environ.setdefault("WARPSPEED_JARS_DIR", str(REPO_ROOT / ".jars"))
    saved_home = os.environ.get("WARPSPEED_HOME")
    with tempfile.TemporaryDirectory(prefix="warpspeed-demo-bench-") as tmp:
        os.environ["WARPSPEED_HOME"] = tmp  # run_demo and its Airflow tasks use this state folder
        settings = WarpSpeedSettings.from_mapping({})
        try:
            with embedded_stack(settings.home, settings.jars_dir) as stack:
                cold = run_demo(TENANTS, REQUESTS, stack=stack)  # its first score task starts the engine; it stays up
                cold_s = dag_run_seconds(settings.home / "logs" / f"dags_test_{cold['window_id']}.log")
                engine = read_handle(settings.home)
                starts = engine_starts(settings.home)
                warm = run_demo(TENANTS, REQUESTS, stack=stack)
                warm_s = dag_run_seconds(settings.home / "logs" / f"dags_test_{warm['window_id']}.log")
                reused = "its tasks reused it" if engine_starts(settings.home) == starts else "an engine was restarted"
        finally:
            stop_engine(settings.home)
            if saved_home is None:
                os.environ.pop("WARPSPEED_HOME", None)
            else:
                os.environ["WARPSPEED_HOME"] = saved_home
    shape = f"{cold['batches']} batches, {cold['rows_scored']} rows, {cold['pairs_exact']}/{cold['pairs']} pairs exact"
    yield {"name": "demo_window_seconds", "value": round(cold_s, 1), "unit": "s",
           "note": f"DAG run of make demo's window ({shape}), nothing warm beforehand: "
                   + (f"{starts} warm Spark engine start(s) included" if starts else
                      "no Spark engine was needed (every batch was routed to the single-node Arrow engine)")}
    yield {"name": "demo_window_seconds_warm", "value": round(warm_s, 1), "unit": "s",
           "note": f"the same window again ({warm['batches']} batches, {warm['rows_scored']} rows"
                   + (f"; on the engine pid {engine.pid} the first run left running: {reused})" if engine else ")")}
