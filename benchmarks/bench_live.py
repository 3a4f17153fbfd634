"""live_window_seconds: window close -> publish on the live stack under ``make demo``'s load.

Starts :class:`warpspeed.embedded.live.LiveStack` (real scheduler, triggerer, api-server,
dag-processor) in a temporary state folder with 2-minute windows
(``WARPSPEED_BENCH_LIVE_WINDOW_MINUTES``) and the default producer
(``make demo``'s load: 50 requests over 20 tenants and 2 invalid messages per window), waits
for ``WARPSPEED_BENCH_LIVE_WINDOWS`` (default 3) published windows and reports the median wall
time from a window's end to the end of its ``publish`` task. Side by side, from the same runs:
the median time the slower workload's score task ran (the Spark work itself), so the ratio is
what orchestration adds around it.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from warpspeed.embedded.live import LiveStack, ProducerConfig
from warpspeed.embedded.live_audit import audit_runs

WINDOWS = int(os.environ.get("WARPSPEED_BENCH_LIVE_WINDOWS", "3"))
WINDOW_MINUTES = int(os.environ.get("WARPSPEED_BENCH_LIVE_WINDOW_MINUTES", "2"))


def run() -> Iterator[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="warpspeed-bench-live-") as tmp, LiveStack(
        Path(tmp), window_minutes=WINDOW_MINUTES, producer=ProducerConfig()
    ) as stack:
        deadline = time.monotonic() + (WINDOWS + 4) * WINDOW_MINUTES * 60 + 600
        while True:
            audits = audit_runs(stack.dag_runs(), stack.task_instances(), WINDOW_MINUTES)
            published = [a for a in audits if a.state == "success" and a.close_to_publish_seconds is not None]
            if len(published) >= WINDOWS or time.monotonic() > deadline:
                break
            time.sleep(5)
    if not published:
        raise RuntimeError(f"no window published on the live stack: {audits}")
    latency = [float(a.close_to_publish_seconds or 0) for a in published]
    spark = [max((e - s).total_seconds() for s, e in a.score_spans.values()) for a in published if a.score_spans]
    median, spark_median = statistics.median(latency), statistics.median(spark) if spark else 0.0
    yield {
        "name": "live_window_seconds",
        "value": round(median, 1),
        "unit": "s",
        "note": f"median window close -> publish over {len(published)} windows ({WINDOW_MINUTES}-min windows, "
                f"make demo's load); slowest score task median {spark_median:.1f} s, ratio "
                f"{median / spark_median if spark_median else float('nan'):.2f}; retried tasks "
                f"{sum(len(a.retried_tasks) for a in published)}",
    }
