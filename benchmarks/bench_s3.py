"""``make demo``'s window: how long its DAG run takes and what it costs in S3 requests.

``make demo``'s window (:func:`warpspeed.embedded.demo.run_demo`: ``airflow dags test
warpspeed_scoring`` for the window that just ended, 20 tenants, 50 requests) on the embedded
stack with everything in S3 (S3Proxy behind the counting proxy, as ``make demo`` runs it), then
the same window with a ``file://`` storage prefix, side by side in one run. Each window's time is
the DAG run's own span from its log, from "Created dag run" to "Marking run ... successful" (the
``airflow`` command's start-up and DAG parsing before it are not part of the run). The S3 window
runs twice: ``cold``, nothing warm beforehand (a batch routed to Spark starts the warm local Spark
engine inside the run), then again with whatever the first run left running (as every window after
the first one of ``make airflow``). Its S3 requests (intake, plan, score, publish: the
``warpspeed.s3_requests`` rows publish recorded) come from the cold run. What maintenance saves in
S3 reads is ``bench_maintenance``'s ``s3_get_head_*``.

Size knobs: ``WARPSPEED_BENCH_S3_TENANTS`` / ``WARPSPEED_BENCH_S3_REQUESTS`` (the demo's window,
default 20 / 50) and ``WARPSPEED_BENCH_S3_WARM`` (``0``: the ``file://`` window runs once, cold only).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TENANTS = int(os.environ.get("WARPSPEED_BENCH_S3_TENANTS", "20"))
REQUESTS = int(os.environ.get("WARPSPEED_BENCH_S3_REQUESTS", "50"))
WARM = os.environ.get("WARPSPEED_BENCH_S3_WARM", "1") != "0"
"""Run the ``file://`` window a second time on the warm engine too (the smoke run skips it)."""
STAMP = re.compile(r"^(\S+Z) ")


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
    from warpspeed.compute.local.engine import engine_log_path

    path = engine_log_path(home)
    return path.read_text(encoding="utf-8", errors="replace").count("warm Spark engine pid") if path.exists() else 0


def demo_windows(storage: str, warm: bool) -> dict[str, Any]:
    """Run make demo's window (cold, then warm if ``warm``) on a scratch state folder; ``storage``: s3 or file."""
    from warpspeed.compute.local.engine import read_handle, stop_engine
    from warpspeed.config.settings import WarpSpeedSettings
    from warpspeed.embedded.demo import run_demo
    from warpspeed.embedded.stack import embedded_stack
    from warpspeed.ledger.s3_requests import per_window
    from warpspeed.ledger.tables import S3_REQUESTS_TABLE

    saved = os.environ.get("WARPSPEED_HOME")
    with tempfile.TemporaryDirectory(prefix=f"warpspeed-s3-bench-{storage}-") as tmp:
        os.environ["WARPSPEED_HOME"] = tmp  # run_demo's Airflow tasks use this state folder
        values = {"home": tmp} | ({"storage_prefix": (Path(tmp) / "storage").as_uri()} if storage == "file" else {})
        settings = WarpSpeedSettings.from_mapping(values)
        logs = settings.home / "logs"
        try:
            with embedded_stack(settings.home, settings.jars_dir, s3=storage == "s3") as stack:
                # both runs are of the same window (its DAG-run log and its s3_requests rows are
                # replaced by the second): read the first run's figures before the second starts
                cold = run_demo(TENANTS, REQUESTS, stack=stack, settings=settings)
                out: dict[str, Any] = {"cold": cold, "engine_starts": engine_starts(settings.home),
                                       "cold_s": dag_run_seconds(logs / f"dags_test_{cold['window_id']}.log")}
                if storage == "s3":
                    rows = settings.catalog.load().load_table(S3_REQUESTS_TABLE).scan().to_arrow().to_pylist()
                    out["s3"] = per_window(rows)
                    out["by_component"] = _by_component(rows, cold["window_id"])
                if warm:
                    out["engine"] = read_handle(settings.home)  # what the first run left running
                    out["warm"] = run_demo(TENANTS, REQUESTS, stack=stack, settings=settings)
                    out["warm_s"] = dag_run_seconds(logs / f"dags_test_{out['warm']['window_id']}.log")
                    out["engine_reused"] = engine_starts(settings.home) == out["engine_starts"]
        finally:
            stop_engine(settings.home)
            if saved is None:
                os.environ.pop("WARPSPEED_HOME", None)
            else:
                os.environ["WARPSPEED_HOME"] = saved
    return out


def _by_component(rows: list[dict[str, Any]], window_id: str) -> str:
    totals: dict[str, int] = {}
    for row in rows:
        if row["window_id"] == window_id:
            totals[row["component"]] = totals.get(row["component"], 0) + int(row["requests"])
    return ", ".join(f"{c} {n}" for c, n in sorted(totals.items()))


def _demo_figures(s3: dict[str, Any]) -> Iterator[dict]:
    """Yield ``make demo``'s window times: cold, then warm (README's ``demo_window_seconds``)."""
    cold, warm, starts, engine = s3["cold"], s3["warm"], s3["engine_starts"], s3["engine"]
    shape = f"{cold['batches']} batches, {cold['rows_scored']} rows, {cold['pairs_exact']}/{cold['pairs']} pairs exact"
    yield {"name": "demo_window_seconds", "value": round(s3["cold_s"], 1), "unit": "s",
           "note": f"DAG run of make demo's window ({shape}), nothing warm beforehand: "
                   + (f"{starts} warm Spark engine start(s) included" if starts else
                      "no Spark engine was needed (every batch was routed to the single-node Arrow engine)")}
    reused = "its tasks reused it" if s3["engine_reused"] else "an engine was restarted"
    yield {"name": "demo_window_seconds_warm", "value": round(s3["warm_s"], 1), "unit": "s",
           "note": f"the same window again ({warm['batches']} batches, {warm['rows_scored']} rows"
                   + (f"; on the engine pid {engine.pid} the first run left running: {reused})" if engine else ")")}


def run() -> Iterator[dict]:
    """Yield the demo window's figures: times, S3 requests."""
    os.environ.setdefault("WARPSPEED_DAGS_FOLDER", str(REPO_ROOT / "dags"))
    os.environ.setdefault("WARPSPEED_JARS_DIR", str(REPO_ROOT / ".jars"))
    s3, local = demo_windows("s3", warm=True), demo_windows("file", warm=WARM)
    yield from _demo_figures(s3)
    window = s3["cold"]["window_id"]
    requests, get_head, cost = s3["s3"][window]
    shape = f"{s3['cold']['batches']} batches, {s3['cold']['rows_scored']} rows"
    yield {"name": "s3_requests_per_window", "value": requests, "unit": "requests",
           "note": f"make demo's window ({shape}) on S3Proxy: {s3['by_component']}; {get_head} GET+HEAD; "
                   f"${cost:.6f} at S3 request prices"}
    yield {"name": "s3_demo_window_seconds", "value": round(s3["cold_s"], 1), "unit": "s",
           "note": f"DAG run, everything on S3 (cold: demo_window_seconds; warm second window {s3['warm_s']:.1f} s)"}
    warm = (f"warm {local['warm_s']:.1f} s" if WARM else "no warm window")
    yield {"name": "file_demo_window_seconds", "value": round(local["cold_s"], 1), "unit": "s",
           "note": f"the same window with a file:// storage prefix, same run (cold; {warm})"}
    warm = (f"warm windows {s3['warm_s'] / local['warm_s']:.2f}" if WARM else "no warm file:// window")
    yield {"name": "s3_vs_file_demo_window", "value": round(s3["cold_s"] / local["cold_s"], 2), "unit": "ratio",
           "note": f"cold windows; {warm} (S3 may cost at most 1.5x)"}


if __name__ == "__main__":
    for figure in run():
        print(figure)
