"""Issue 12 acceptance: the live stack (real scheduler, triggerer, api-server, dag-processor).

One module-scoped stack with 2-minute windows and a producer for both workloads: two windows
through with every requested (tenant, model) pair scored exactly once per account, no task
retried, both workloads' score tasks overlapping, the window sensor seen ``deferred``; then a
screenshot of the live UI in headless Chromium (``docs/live-ui.png`` when
``WARPSPEED_UPDATE_SCREENSHOTS=1``).

Issue 25 on the same stack: its OpenLineage events (an HTTP sink on loopback) form one connected
graph per window, queue -> collect -> plan -> score -> publish; its metrics reach a StatsD listener
on loopback; and with a deadline of 3 s after each window's end every window is late, so the
alert's callback runs in the triggerer and calls the configured notifier.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import headless
from tests.loopback import LineageSink, StatsdSink, lineage_sink, statsd_sink
from tests.paths import REPO_ROOT
from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.demo import check_pairs
from warpspeed.embedded.live import LiveStack, ProducerConfig
from warpspeed.embedded.live_audit import audit_runs
from warpspeed.embedded.postgres import PostgresServer
from warpspeed.window.manifests import IntakeManifest, WindowLayout
from warpspeed.window.rule import window_for

pytestmark = pytest.mark.live

WINDOW_MINUTES = 2
"""Long enough for the first run's sensor to defer under CI load.

Nothing checked here depends on the length, but the first run's sensor must start more than
``SHORT_WAIT_S`` before its window's end or it waits in the worker. With 1-minute windows a CI run
(six lanes at once) unpaused 11.8 s into a window; the sensor's task started 19 s into it and its
``execute`` at least 31 s later: it never deferred."""
DOCS = Path(__file__).resolve().parents[2] / "docs"


LINEAGE_NAMESPACE = "warpspeed-live"


@pytest.fixture(scope="module")
def lineage() -> Iterator[LineageSink]:
    """Receive the stack's OpenLineage events."""
    with lineage_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
def statsd() -> Iterator[StatsdSink]:
    """Receive the stack's metrics."""
    with statsd_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the file the deadline notifier (:func:`tests.live.alerts.record_alert`) appends to."""
    return tmp_path_factory.mktemp("alerts") / "alerts.jsonl"


@pytest.fixture(scope="module")
def live_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, new_airflow_db: Callable[[], str],
    lineage: LineageSink, statsd: StatsdSink, alerts: Path,
) -> Iterator[LiveStack]:
    """Run the live stack for this module on the session's PostgreSQL (login-free UI for the screenshot)."""
    producer = ProducerConfig(tenants=4, requests_per_window=6, invalid_per_window=1, chunks_per_window=2)
    extra_env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": lineage.transport(),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": LINEAGE_NAMESPACE,
        **statsd.env(),
        "AIRFLOW__WARPSPEED__WINDOW_DEADLINE_MINUTES": "0.05",  # 3 s after the window's end: always late
        "AIRFLOW__WARPSPEED__DEADLINE_NOTIFIER": "tests.live.alerts.record_alert",
        "AIRFLOW__WARPSPEED__DEADLINE_NOTIFIER_KWARGS": json.dumps({"path": str(alerts)}),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    stack = LiveStack(tmp_path_factory.mktemp("live-home"), window_minutes=WINDOW_MINUTES, producer=producer,
                      extra_env=extra_env, unpause=False, postgres=postgres, db_url=new_airflow_db())
    with stack:
        yield stack
    leftovers = [c.name for c in stack.components.values() if c.alive]
    assert not leftovers, f"still running after stop: {leftovers}"


def _logs(stack: LiveStack) -> str:
    return "\n".join(f"--- {c.name}\n" + c.log_path.read_text(errors="replace")[-2000:]
                     for c in stack.components.values())


def _retry_causes(stack: LiveStack) -> str:
    """Return the scheduler's lines on failed workloads and retries, each failure with its traceback's last line."""
    lines = stack.components["scheduler"].log_path.read_text(errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines):
        if "UP_FOR_RETRY" in line or "Workload execution failed" in line:
            out.append(line[:400])
            traceback = [t for t in _until_next_record(lines[i + 1:]) if t[:1].isalpha()]
            out += traceback[-1:]
    return "\n".join(out) or "(no retry in the scheduler's log)"


def _until_next_record(lines: list[str]) -> Iterator[str]:
    """Yield the lines before the next timestamped log record."""
    for line in lines:
        if line[:1].isdigit():
            return
        yield line


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_two_windows_through_exactly_once_no_retries_overlapping_deferred(live_stack: LiveStack) -> None:
    stack = live_stack
    assert stack.producer is not None
    # the first run's sensor then waits (deferred) for its window: at least 77 s of it are left at the reparse
    unpaused_at = stack.unpause_early_in_a_window(slack=40)
    deferred_seen = False
    deadline = time.monotonic() + 20 * 60
    while True:
        tis = stack.task_instances()
        deferred_seen |= any(t["task_id"] == "wait_for_window" and t["state"] == "deferred" for t in tis)
        audits = audit_runs(stack.dag_runs(), tis, WINDOW_MINUTES)
        failed = [a.run_id for a in audits if a.state == "failed"]
        assert not failed, f"runs failed: {failed}\n{_logs(stack)}"
        done = [a for a in audits if a.state == "success"]
        if len(done) >= 2:
            break
        assert time.monotonic() < deadline, f"two windows not through in time: {audits}\n{_logs(stack)}"
        time.sleep(2)
    stack.producer.stopped.set()

    # a deferral shorter than a poll shows in the task's log: deferred, then resumed by its trigger's event
    sensor_logs = (stack.home / "airflow" / "logs").glob("dag_id=*/run_id=*/task_id=wait_for_window/attempt=1.log")
    deferred_seen |= any("Pausing task as DEFERRED" in log.read_text(errors="replace") for log in sensor_logs)
    sensors = [(t["dag_run_id"], t["state"], t["start_date"], t["end_date"]) for t in tis
               if t["task_id"] == "wait_for_window"]
    assert deferred_seen, f"wait_for_window never deferred (unpaused {unpaused_at:.1f} s into a window): {sensors}"
    assert any(a.score_tasks_overlapped and set(a.score_spans) == {"scoring", "intent"} for a in done), done
    retried = [(t["task_id"], t["map_index"], t["try_number"]) for t in tis if int(t["try_number"] or 0) > 1]
    assert retried == [], f"tasks retried: {retried}\n{_retry_causes(stack)}"
    assert [a.retried_tasks for a in done] == [()] * len(done)

    # Every request sent before the last window's collect started is in one window's intake
    # manifest, and every (tenant, model) pair those windows took has exactly one score per account.
    settings = WarpSpeedSettings.from_mapping({"home": str(stack.home)})
    storage = settings.storage()
    done_ids = {a.run_id for a in done}
    collected = []
    for run in stack.dag_runs():
        if run["dag_run_id"] in done_ids:
            window_id = window_for(_ts(run["logical_date"]), WINDOW_MINUTES).id
            uri = WindowLayout(settings.storage_prefix, window_id).intake_uri
            collected += IntakeManifest.from_json(storage.read_text(uri)).requests
    last_collect = max(_ts(t["start_date"]) for t in tis
                       if t["task_id"] == "collect_requests" and t["dag_run_id"] in done_ids)
    sent_before = {d["request_id"] for d, at in zip(stack.producer.sent, stack.producer.sent_at, strict=True)
                   if at < last_collect}
    assert sent_before and sent_before <= {r.request_id for r in collected}
    assert {r.workload for r in collected} == {"scoring", "intent"}
    pairs = {(r.tenant_id, r.model) for r in collected}
    checks = check_pairs(settings.catalog.load(), pairs)
    assert [c for c in checks if not c.exact] == []
    assert len(checks) == len(pairs) > 0


def _listeners(pids: set[int]) -> list[tuple[int, str, int]]:
    import psutil

    found = []
    for pid in pids:
        try:
            found += [(pid, c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN]
        except psutil.NoSuchProcess:
            continue
    return found


def test_no_listener_of_the_live_stack_is_outside_loopback(live_stack: LiveStack) -> None:
    """Issue 27: servers, Airflow components (no log servers), what they started and the warm engine."""
    import psutil

    from warpspeed.compute.local.engine import read_handle

    assert live_stack.supervisor is not None
    roots = {s.pid for s in live_stack.supervisor.servers.values() if s.pid} | {
        c.proc.pid for c in live_stack.components.values() if c.alive and c.proc is not None}
    engine = read_handle(live_stack.home)
    if engine is not None:
        roots.add(engine.pid)
    pids = set(roots)
    for pid in roots:
        try:
            pids |= {p.pid for p in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            continue
    listeners = _listeners(pids)
    assert live_stack.postgres is not None
    listeners += [(-1, c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
                  if c.status == psutil.CONN_LISTEN and c.laddr.port == live_stack.postgres.port]
    ports = {port for _, _, port in listeners}
    assert {live_stack.port, live_stack.postgres.port} <= ports and len(ports) >= 4  # api, pg, catalog, sqs
    assert [entry for entry in listeners if entry[1] != "127.0.0.1"] == []
    assert not ports & {8793, 8794}  # Airflow's log servers are off


def test_screenshot_of_the_live_ui(live_stack: LiveStack, tmp_path: Path) -> None:
    shot = tmp_path / "live-ui.png"
    headless(tmp_path / "chromium-profile", f"{live_stack.base_url}/dags/warpspeed_scoring",
             "--window-size=1400,900", f"--screenshot={shot}", budget_ms=20000)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1400, 900)
        colors = img.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 50, "the screenshot looks blank"
    if os.environ.get("WARPSPEED_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, DOCS / "live-ui.png")


def _succeeded_runs(stack: LiveStack) -> list[str]:
    return [a.run_id for a in audit_runs(stack.dag_runs(), stack.task_instances(), WINDOW_MINUTES)
            if a.state == "success"]


def _names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def _window_graph(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]] | None:
    """Return, for one DAG run whose publish completed, its tasks' COMPLETE events by task id."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for event in events:
        parent = (event.get("run", {}).get("facets") or {}).get("parent") or {}
        job = event.get("job", {}).get("name", "")
        if event.get("eventType") == "COMPLETE" and job.startswith("warpspeed_scoring.") and parent:
            runs.setdefault(parent["run"]["runId"], {}).setdefault(job.split(".", 1)[1], []).append(event)
    return next((tasks for tasks in runs.values() if "publish" in tasks and "collect_requests" in tasks), None)


def test_one_window_is_one_connected_lineage_graph(live_stack: LiveStack, lineage: LineageSink) -> None:
    assert _succeeded_runs(live_stack), "no window through (see the first test)"
    deadline = time.monotonic() + 120
    while (graph := _window_graph(lineage.snapshot())) is None:
        assert time.monotonic() < deadline, f"no window's events: {len(lineage.snapshot())} events"
        time.sleep(2)
    assert {e["job"]["namespace"] for tasks in graph.values() for e in tasks} == {LINEAGE_NAMESPACE}
    (collect,), (plan,), (publish,) = graph["collect_requests"], graph["plan_batches"], graph["publish"]
    scores = graph["score_batches"]
    assert any(name.endswith("/warpspeed-requests") for _, name in _names(collect["inputs"]))  # the queue
    assert _names(collect["outputs"]) & _names(plan["inputs"])  # the intake manifest
    for score in scores:  # one per workload
        assert _names(plan["outputs"]) & _names(score["inputs"])  # the batch manifests
        assert ("features.account_features" in {n for _, n in _names(score["inputs"])})
        assert _names(score["outputs"]) & _names(publish["inputs"])  # the run records
    written = [o for s in scores for o in s["outputs"] if o["name"] == "scores.account_scores"]
    assert written, [s["outputs"] for s in scores]
    for table in written:
        rows = table["outputFacets"]["outputStatistics"]["rowCount"]
        per_tenant = table["outputFacets"]["warpspeed_tenantRows"]["rowsByTenant"]
        assert rows > 0 and sum(per_tenant.values()) == rows
        assert set(per_tenant) <= set(live_stack.tenants)
    assert "warpspeed.batch_runs" in {n for _, n in _names(publish["outputs"])}


def test_the_windows_metrics_reach_statsd(live_stack: LiveStack, statsd: StatsdSink) -> None:
    assert _succeeded_runs(live_stack), "no window through (see the first test)"
    counts = {name: sum(int(v.split("|")[0]) for v in statsd.values(f"warpspeed.window.{name}"))
              for name in ("requests", "invalid", "dead_lettered", "batches", "rows_scored")}
    assert all(counts.values()), counts
    assert statsd.values("warpspeed.window.cost_usd") and all(v.endswith("|g")
                                                              for v in statsd.values("warpspeed.window.cost_usd"))
    assert all(v.endswith("|ms") for v in statsd.values("warpspeed.window.close_to_publish"))
    assert statsd.values("warpspeed.window.close_to_publish")


def test_a_late_window_fires_its_deadline_alert(live_stack: LiveStack, alerts: Path, statsd: StatsdSink) -> None:
    succeeded = set(_succeeded_runs(live_stack))
    deadline = time.monotonic() + 180
    while True:
        seen = [json.loads(line) for line in alerts.read_text().splitlines()] if alerts.exists() else []
        if any(a["dag_run_id"] in succeeded for a in seen):
            break
        assert time.monotonic() < deadline, f"no alert for {succeeded}: {seen}\n{_logs(live_stack)}"
        time.sleep(3)
    alert = next(a for a in seen if a["dag_run_id"] in succeeded)
    run = next(r for r in live_stack.dag_runs() if r["dag_run_id"] == alert["dag_run_id"])
    assert alert["window"]["id"] == window_for(_ts(run["logical_date"]), WINDOW_MINUTES).id
    assert statsd.values("warpspeed.window.deadline_missed")
    triggerer = live_stack.components["triggerer"].log_path.read_text(errors="replace")
    assert f"window {alert['window']['id']} of warpspeed_scoring" in triggerer and "missed its deadline" in triggerer
