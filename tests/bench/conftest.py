"""Smoke runs of the benchmarks: started in the background as soon as the session has collected them.

Each selected ``benchmarks/bench_*.py`` module runs as ``python benchmarks/run.py <module>`` with
its size knobs turned down, one after another in a background thread, while the session runs its
other tests; the smoke tests themselves come last and only collect each run's exit code and
output. In ``make test`` the live tier's session runs ``bench_live`` beside the live tests, the
other session every other bench beside the unit and integration tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from warpspeed.embedded.server import die_with_parent

BENCHMARKS = REPO_ROOT / "benchmarks"
FLAVOURS = ("expression", "mlflow", "spark_ml")
SMOKE: dict[str, tuple[dict[str, str], set[str]]] = {
    # bench module: (its size knobs for a smoke run, the figures it must print); slowest first
    "bench_live": ({"WARPSPEED_BENCH_LIVE_WINDOWS": "1", "WARPSPEED_BENCH_LIVE_WINDOW_MINUTES": "1"},
                   {"live_window_seconds"}),
    "bench_s3": ({"WARPSPEED_BENCH_S3_TENANTS": "2", "WARPSPEED_BENCH_S3_REQUESTS": "3",
                  "WARPSPEED_BENCH_S3_WARM": "0"},
                 {"demo_window_seconds", "demo_window_seconds_warm", "s3_requests_per_window",
                  "s3_demo_window_seconds", "file_demo_window_seconds", "s3_vs_file_demo_window"}),
    "bench_flavours": ({"WARPSPEED_BENCH_FLAVOUR_ROWS": "300", "WARPSPEED_BENCH_FLAVOUR_STEADY": "1"},
                       {f"{p}_{f}{s}" for f in FLAVOURS for p, s in (("score_rows_per_s", ""), ("score_vs_native", ""),
                                                                      ("score_vs_native", "_first"))}),
    "bench_maintenance": ({"WARPSPEED_BENCH_MAINT_COMMITS": "12"},
                          {*(f"maint_{n}" for n in ("files_before", "files_after", "snapshots_before",
                                                    "snapshots_after", "manifests_before", "manifests_after",
                                                    "metadata_bytes_ratio", "plan_time_ratio", "spark_s")),
                           "s3_get_head_per_window_before_maintenance", "s3_get_head_per_window_after_maintenance",
                           "s3_get_head_cut_by_maintenance"}),
    "bench_batching": ({"WARPSPEED_BENCH_BATCHING_TENANTS": "3", "WARPSPEED_BENCH_BATCHING_REQUESTS": "4",
                        "WARPSPEED_BENCH_BATCHING_SAMPLE": "1"},
                       {"batching_speedup", "batching_speedup_spark_warm", "batching_speedup_spark_cold",
                        "batching_requests_per_min"}),
    "bench_scoring": ({"WARPSPEED_BENCH_SCORING_ROWS": "2000", "WARPSPEED_BENCH_SCORING_STEADY": "1"},
                      {"scoring_rows_per_s", "arrow_rows_per_s", "scoring_vs_arrow", "scoring_vs_arrow_first"}),
    "bench_routing": ({"WARPSPEED_BENCH_ROUTING_ROWS": "400", "WARPSPEED_BENCH_ROUTING_RUNS": "1",
                       "WARPSPEED_BENCH_ROUTING_SPARK_RUNS": "1"},
                      {"routed_small_batch_s", "routed_small_batch_mlflow_s", "routed_small_batch_subprocess_s",
                       "spark_small_batch_s", "routed_small_batch_speedup"}),
    "bench_intake": ({"WARPSPEED_BENCH_INTAKE_MESSAGES": "40"},
                     {"intake_msgs_per_s", "intake_naive_msgs_per_s", "intake_speedup_vs_naive"}),
    "bench_server_start": ({"WARPSPEED_BENCH_SERVER_RUNS": "1"},
                           {*(f"server_start_cpu_s_{n}{a}" for n in ("sqs", "s3", "rest_catalog")
                              for a in ("", "_archived")), "server_start_cpu_ratio", "server_start_wall_ratio"}),
    "bench_emr": ({"WARPSPEED_BENCH_EMR_REQUESTS": "40"}, {"emr_calls_per_window", "emr_calls_cluster_per_request"}),
    "bench_dag_parse": ({"WARPSPEED_BENCH_DAG_PARSE_RUNS": "1"}, {"dag_parse_s"}),
    "bench_planner": ({"WARPSPEED_BENCH_PLANNER_SCALE": "0.01"},
                      {*(f"planner_{n}_s" for n in ("1k", "10k", "100k", "100k_capped")), "planner_growth_10k_to_100k",
                       "planner_balance", "planner_balance_packed", "planner_batches", "planner_batches_naive"}),
    "bench_simulator": ({"WARPSPEED_BENCH_SIM_DAYS": "0.25"},
                        {"sim_cost_ratio_vs_serverless", "sim_monthly_usd_serverless",
                         "sim_monthly_usd_cluster_per_request", "sim_monthly_usd_warpspeed",
                         "sim_warpspeed_spark_apps_ratio"}),
}
TIMEOUT = 1800
_RUNS: dict[str, Future[tuple[int, str]]] = {}
_POOL = ThreadPoolExecutor(1, thread_name_prefix="bench-smoke")
_RUNNING: set[subprocess.Popen[bytes]] = set()


def _run(module: str, logs: Path, environ: dict[str, str]) -> tuple[int, str]:
    log = logs / f"{module}.log"
    with log.open("wb") as fh:
        # dies with this session even on its SIGKILL (the servers it starts die with it in turn)
        argv = die_with_parent([sys.executable, str(BENCHMARKS / "run.py"), module])
        proc = subprocess.Popen(argv, env=environ | SMOKE[module][0], stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        _RUNNING.add(proc)
        try:
            code = proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            code = proc.wait()
        finally:
            _RUNNING.discard(proc)
    return code, log.read_text(encoding="utf-8", errors="replace")


def _module_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("module") if callspec is not None and item.path.parent.name == "bench" else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the smoke tests last: they wait for runs that go on beside the tests before them."""
    items.sort(key=lambda item: _module_of(item) is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the smoke run of every selected bench module, slowest first, one at a time."""
    selected = {m for item in session.items if (m := _module_of(item))}
    if selected and not session.config.option.collectonly:
        logs = Path(tempfile.mkdtemp(prefix="warpspeed-bench-smoke-"))
        # the environment before any test runs: a run started later must not inherit what a test running
        # then has monkeypatched (a bench_s3 run got a test's AIRFLOW__WARPSPEED__STORAGE_PREFIX, so its
        # Airflow tasks wrote the window's intake.json under another prefix than the bench read)
        environ = dict(os.environ)
        for module in (m for m in SMOKE if m in selected):
            _RUNS[module] = _POOL.submit(_run, module, logs, environ)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop whatever smoke run is still going (an interrupted session) and its process group."""
    for future in _RUNS.values():
        future.cancel()
    for proc in list(_RUNNING):
        os.killpg(proc.pid, signal.SIGINT)  # the bench's own cleanup stops the servers it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    _POOL.shutdown(wait=True)


@pytest.fixture
def bench_run() -> dict[str, Future[tuple[int, str]]]:
    """Return each started smoke run: module name -> future (exit code, output)."""
    return _RUNS
