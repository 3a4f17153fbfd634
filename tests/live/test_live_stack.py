"""Issue 12 acceptance: the live stack (real scheduler, triggerer, api-server, dag-processor).

One module-scoped stack with 2-minute windows and a producer for both workloads: two windows
through with every requested (tenant, model) pair scored exactly once per account, no task
retried, both workloads' score tasks overlapping, the window sensor seen ``deferred``; then a
screenshot of the live UI in headless Chromium (``docs/live-ui.png`` when
``WARPSPEED_UPDATE_SCREENSHOTS=1``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.demo import check_pairs
from warpspeed.embedded.live import LiveStack, ProducerConfig
from warpspeed.embedded.live_audit import audit_runs
from warpspeed.embedded.postgres import PostgresServer
from warpspeed.window.manifests import IntakeManifest, WindowLayout
from warpspeed.window.rule import window_for

pytestmark = pytest.mark.live

WINDOW_MINUTES = 2
DOCS = Path(__file__).resolve().parents[2] / "docs"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def live_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, new_airflow_db: Callable[[], str]
) -> Iterator[LiveStack]:
    """Run the live stack for this module on the session's PostgreSQL (login-free UI for the screenshot)."""
    producer = ProducerConfig(tenants=4, requests_per_window=6, invalid_per_window=1, chunks_per_window=2)
    stack = LiveStack(tmp_path_factory.mktemp("live-home"), window_minutes=WINDOW_MINUTES, producer=producer,
                      extra_env={"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}, unpause=False,
                      postgres=postgres,
                      db_url=new_airflow_db())
    with stack:
        yield stack
    leftovers = [c.name for c in stack.components.values() if c.alive]
    assert not leftovers, f"still running after stop: {leftovers}"


def _logs(stack: LiveStack) -> str:
    return "\n".join(f"--- {c.name}\n" + c.log_path.read_text(errors="replace")[-2000:]
                     for c in stack.components.values())


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_two_windows_through_exactly_once_no_retries_overlapping_deferred(live_stack: LiveStack) -> None:
    stack = live_stack
    assert stack.producer is not None
    stack.unpause_early_in_a_window()  # the first run's sensor then waits (deferred) for its window
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

    assert deferred_seen, "wait_for_window was never seen deferred"
    assert any(a.score_tasks_overlapped and set(a.score_spans) == {"scoring", "intent"} for a in done), done
    retried = [(t["task_id"], t["map_index"], t["try_number"]) for t in tis if int(t["try_number"] or 0) > 1]
    assert retried == []
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
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium binary on PATH: `apt-get install -y chromium` (Debian) to run this check")
    shot = tmp_path / "live-ui.png"
    profile = tmp_path / "chromium-profile"
    subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1400,900",
         "--virtual-time-budget=20000", f"--screenshot={shot}", f"{live_stack.base_url}/dags/warpspeed_scoring"],
        capture_output=True, text=True, timeout=180, check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size == (1400, 900)
        colors = img.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colors is not None and len(colors) > 50, "the screenshot looks blank"
    if os.environ.get("WARPSPEED_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, DOCS / "live-ui.png")
