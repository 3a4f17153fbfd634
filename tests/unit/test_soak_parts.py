"""The soak's moving parts: the visibility setting it relies on, the fault proxy, the chaos kills, the load."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from warpspeed.config.settings import WarpSpeedSettings
from warpspeed.embedded.soak.chaos import kill_tree, process_tree
from warpspeed.embedded.soak.fault_proxy import FAULTS, FaultProxy
from warpspeed.embedded.soak.producer import (
    EXPECT_DEAD_LETTER,
    EXPECT_DUPLICATE,
    EXPECT_REQUEST,
    SoakLoad,
    SoakProducer,
    read_sent,
)
from warpspeed.exceptions import WarpSpeedConfigError
from warpspeed.intake.service import IntakeService
from warpspeed.operators.collect import CollectRequestsOperator


def test_the_intake_visibility_timeout_is_a_setting(tmp_path: Path) -> None:
    assert WarpSpeedSettings.from_mapping({"home": str(tmp_path)}).intake_visibility_timeout == 600
    s = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "intake_visibility_timeout": "60"})
    assert s.intake_visibility_timeout == 60
    with pytest.raises(WarpSpeedConfigError, match="intake_visibility_timeout=5 must be between 10"):
        WarpSpeedSettings.from_mapping({"home": str(tmp_path), "intake_visibility_timeout": "5"})


def test_the_collect_task_hides_messages_for_the_configured_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def collect_window(self: IntakeService, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(IntakeService, "collect_window", collect_window)
    settings = WarpSpeedSettings.from_mapping({"home": str(tmp_path), "queue_url": "q", "dead_letter_queue_url": "d",
                                               "intake_visibility_timeout": "90",
                                               "storage_prefix": (tmp_path / "storage").as_uri()})
    op = CollectRequestsOperator(task_id="collect", workloads_file=str(Path("dags/config/workloads.yaml").resolve()))
    monkeypatch.setattr(CollectRequestsOperator, "settings", settings)
    with pytest.raises(RuntimeError, match="stop here"):
        op.execute({"logical_date": datetime(2026, 11, 21, 10, 0, tzinfo=UTC)})  # type: ignore[typeddict-item]
    assert seen["options"].visibility_timeout == 90


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps({"echo": body.decode(), "target": self.headers.get("X-Amz-Target")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_the_fault_proxy_forwards_or_fails_each_call_and_counts_the_faults() -> None:
    import urllib.error
    import urllib.request

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", fault_rate=0.3, seed=1) as proxy:
            ok, failed = 0, []
            for i in range(60):
                req = urllib.request.Request(proxy.endpoint_url + "/", data=f"call {i}".encode(), method="POST",
                                             headers={"X-Amz-Target": "AmazonSQS.ReceiveMessage"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        assert json.loads(resp.read()) == {"echo": f"call {i}", "target": "AmazonSQS.ReceiveMessage"}
                        ok += 1
                except urllib.error.HTTPError as err:
                    failed.append((err.code, json.loads(err.read())["__type"].rpartition("#")[2]))
            assert ok + len(failed) == 60 == proxy.calls
            assert len(failed) == proxy.injected > 5 and ok > 30
            assert set(failed) <= {(status, code) for status, code, _ in FAULTS}
            assert all(key.startswith("ReceiveMessage:") for key in proxy.faults)
    finally:
        upstream.shutdown()
        upstream.server_close()


def test_kill_tree_kills_a_process_and_everything_under_it() -> None:
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
              "time.sleep(120)\n")
    outer = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {script!r}]); time.sleep(120)"
    root = subprocess.Popen([sys.executable, "-c", outer])
    try:
        deadline = time.monotonic() + 30
        while len(tree := process_tree(root.pid)) < 2:
            assert time.monotonic() < deadline, tree
            time.sleep(0.2)
        assert sorted(depth for _, depth, _, _ in tree) == [1, 2]
        child = next(pid for pid, depth, _, _ in tree if depth == 1)
        assert kill_tree(child) == 2
        time.sleep(0.5)
        assert process_tree(root.pid) == [] or all(
            _zombie(pid) for pid, _, _, _ in process_tree(root.pid))
    finally:
        root.kill()
        root.wait()


def _zombie(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_producer_sends_its_shares_and_records_every_message(tmp_path: Path) -> None:
    counter = iter(range(10_000))
    bodies: list[str] = []

    def send(batch: list[str]) -> list[str]:
        bodies.extend(batch)
        return [f"m{next(counter)}" for _ in batch]

    load = SoakLoad(requests=600, windows=3, chunks_per_window=4)
    producer = SoakProducer(send, ["tenant-000", "tenant-001"], load, tmp_path / "sent.jsonl")
    for index in range(load.chunks):
        producer.send_chunk(index)
    sent = read_sent(tmp_path / "sent.jsonl")
    assert sent == producer.sent and len(sent) == len(bodies)
    kinds = {e: [s for s in sent if s.expect == e] for e in (EXPECT_REQUEST, EXPECT_DUPLICATE, EXPECT_DEAD_LETTER)}
    assert len({s.request_id for s in kinds[EXPECT_REQUEST]}) == 600
    assert len(kinds[EXPECT_DUPLICATE]) >= 0.05 * 600 - 5 and len(kinds[EXPECT_DEAD_LETTER]) >= 0.05 * 600 - 5
    assert {s.request_id for s in kinds[EXPECT_DUPLICATE]} <= {s.request_id for s in kinds[EXPECT_REQUEST]}
    assert any(s.kind == "dup_earlier" for s in kinds[EXPECT_DUPLICATE])
    assert len({s.message_id for s in sent}) == len(sent)


class _Component:
    def __init__(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self.name, self.proc = name, proc

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def _stop_all(scheduler: _Component, engine: subprocess.Popen[bytes]) -> None:
    """Kill a fake scheduler's tree and a fake engine's process group; reap both."""
    for pid in [p for p, _, _, _ in process_tree(scheduler.proc.pid)]:
        kill_tree(pid)
    scheduler.proc.kill()
    scheduler.proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(engine.pid, signal.SIGKILL)
    engine.wait()


def _sleeper_tree(levels: int) -> subprocess.Popen[bytes]:
    """Start a process with a chain of ``levels`` descendants under it (each sleeps)."""
    code = "import time; time.sleep(120)"
    for _ in range(levels):
        code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {code!r}]); time.sleep(120)"
    return subprocess.Popen([sys.executable, "-c", code])


def test_chaos_kills_the_scheduler_then_restarts_it_and_never_shoots_one_task_twice() -> None:
    from warpspeed.embedded.soak.chaos import Chaos, ChaosPlan

    scheduler = _Component("scheduler", _sleeper_tree(3))  # scheduler -> worker -> task -> compute
    restarted: list[str] = []
    chaos = Chaos({"scheduler": scheduler}, restarted.append, ChaosPlan(poll=0.05, kills=3, restart_after=0.01))
    try:
        deadline = time.monotonic() + 30
        while len(process_tree(scheduler.proc.pid)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        started = [pid for pid, _, _, _ in process_tree(scheduler.proc.pid)]
        assert chaos.strike("task")  # the task (depth 2) and its compute child
        time.sleep(0.5)
        assert [d for pid, d, _, _ in process_tree(scheduler.proc.pid) if not _zombie(pid)] == [1]
        assert not chaos.strike("task") and not chaos.strike("compute")  # nothing left under that worker
        assert chaos.strike("scheduler")
        assert scheduler.proc.wait(timeout=10) == -9 and restarted == ["scheduler"]
        assert dict(chaos.kills) == {"task": 1, "scheduler": 1} and chaos.total == 2
    finally:
        for pid in locals().get("started", []):
            kill_tree(pid)
        scheduler.proc.kill()
        scheduler.proc.wait()


def test_chaos_spares_the_scheduler_while_a_task_it_runs_was_already_shot() -> None:
    from warpspeed.embedded.soak.chaos import Chaos, ChaosPlan

    scheduler = _Component("scheduler", _sleeper_tree(2))  # scheduler -> worker -> task
    restarted: list[str] = []
    chaos = Chaos({"scheduler": scheduler}, restarted.append, ChaosPlan(poll=0.05, kills=2, restart_after=0.01))
    started: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(process_tree(scheduler.proc.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        started = [pid for pid, _, _, _ in process_tree(scheduler.proc.pid)]
        running = {key for _, _, key in chaos._running()}
        assert len(running) == 1
        chaos.shot_tasks |= running
        assert not chaos.strike("scheduler") and scheduler.alive and restarted == []
        chaos.shot_tasks.clear()
        assert chaos.strike("scheduler") and restarted == ["scheduler"]
        assert chaos.shot_tasks == running  # the task lost its try with the scheduler
    finally:
        for pid in started:
            kill_tree(pid)
        scheduler.proc.kill()
        scheduler.proc.wait()


def test_chaos_kills_the_warm_engine_process_group_only_while_tasks_run() -> None:
    """An engine kill takes the engine's whole process group and counts as a shot at every running task."""
    from warpspeed.embedded.soak.chaos import Chaos, ChaosPlan

    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); " \
           "time.sleep(120)"
    engine = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)  # leads its own group
    scheduler = _Component("scheduler", _sleeper_tree(2))  # scheduler -> worker -> task
    idle = Chaos({"scheduler": _Component("scheduler", subprocess.Popen(["true"]))}, lambda _: None,
                 ChaosPlan(poll=0.05, kills=1), engine_pid=lambda: engine.pid)
    chaos = Chaos({"scheduler": scheduler}, lambda _: None, ChaosPlan(poll=0.05, kills=1),
                  engine_pid=lambda: engine.pid)
    try:
        deadline = time.monotonic() + 30
        while len(process_tree(engine.pid)) < 1 or len(process_tree(scheduler.proc.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        worker_child = process_tree(engine.pid)[0][0]
        idle.components["scheduler"].proc.wait()
        assert not idle.strike("engine")  # no task runs: nothing to fail, no kill
        assert chaos.strike("engine")
        assert engine.wait(timeout=10) == -9
        deadline = time.monotonic() + 10
        while not _zombie(worker_child):  # the engine's worker died with its group
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert dict(chaos.kills) == {"engine": 1} and chaos.shot_tasks
        assert not chaos.strike("task")  # the task running during the engine kill already lost a try
    finally:
        _stop_all(scheduler, engine)


def test_chaos_waits_for_an_owed_engine_kill_until_the_engine_runs_a_job() -> None:
    """``at_least`` makes the engine kill certain: the slot waits until the engine is busy, then kills it."""
    from warpspeed.embedded.soak.chaos import Chaos, ChaosPlan

    engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    scheduler = _Component("scheduler", _sleeper_tree(2))  # scheduler -> worker -> task
    busy = iter([None, None, None])  # idle for three polls, then running a job
    plan = ChaosPlan(poll=0.05, kills=1, min_gap=0.01, max_gap=0.02, weights={"task": 1, "engine": 1},
                     at_least={"engine": 1}, owed_wait=30)
    chaos = Chaos({"scheduler": scheduler}, lambda _: None, plan, engine_pid=lambda: next(busy, engine.pid))
    try:
        deadline = time.monotonic() + 30
        while len(process_tree(scheduler.proc.pid)) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert chaos.owed() == ["engine"]
        chaos.run()  # one kill: the owed engine kill, after the idle polls, although a task was killable
        assert chaos.error is None and dict(chaos.kills) == {"engine": 1} and chaos.owed() == []
        assert engine.wait(timeout=10) == -9
    finally:
        _stop_all(scheduler, engine)


def test_a_chaos_plan_cannot_owe_unknown_actions_or_more_kills_than_it_makes() -> None:
    from warpspeed.embedded.soak.chaos import ChaosPlan

    with pytest.raises(ValueError, match="at_least"):
        ChaosPlan(poll=0.05, kills=3, at_least={"spark": 1})
    with pytest.raises(ValueError, match="at_least"):
        ChaosPlan(poll=0.05, kills=1, at_least={"engine": 1, "task": 1})


def test_the_producer_spreads_a_window_over_distinct_pairs_and_keeps_some_supersession(tmp_path: Path) -> None:
    counter = iter(range(10_000))
    load = SoakLoad(requests=1500, windows=3, chunks_per_window=4)
    tenants = [f"tenant-{i:03d}" for i in range(load.tenants)]
    producer = SoakProducer(lambda batch: [f"m{next(counter)}" for _ in batch], tenants, load,
                            tmp_path / "sent.jsonl")
    for index in range(load.chunks):
        producer.send_chunk(index)
    valid = [s for s in producer.sent if s.expect == EXPECT_REQUEST]
    per_window = load.chunks_per_window * (load.requests // load.chunks)
    for start in range(0, len(valid), per_window):  # the producer's windows, in send order
        window = valid[start:start + per_window]
        pairs = {(s.tenant_id, s.model) for s in window}
        assert 0.9 * len(window) <= len(pairs) < len(window)


def test_the_soak_bundle_sends_its_spark_workloads_to_spark_and_keeps_the_rest(tmp_path: Path) -> None:
    """The soak's copy of the DAG bundle routes the named workloads to Spark, so the chaos meets real Spark runs."""
    from tests.paths import REPO_ROOT
    from warpspeed.config.workloads import WorkloadCatalog
    from warpspeed.embedded.soak.run import SoakConfig, soak_dags_folder
    from warpspeed.planning.routing import ARROW, SPARK, engine_for

    assert SoakConfig().spark_workloads == ("intent",)
    folder = soak_dags_folder(tmp_path, ("intent",), source=REPO_ROOT / "dags")
    assert (folder / "warpspeed_scoring.py").is_file() and folder.is_relative_to(tmp_path)
    shipped = WorkloadCatalog.load(REPO_ROOT / "dags" / "config" / "workloads.yaml")
    soaked = WorkloadCatalog.load(folder / "config" / "workloads.yaml")
    assert soaked.workloads["intent"].planning.single_node_max_rows == 0
    assert engine_for(500, {"expression"}, soaked.workloads["intent"].planning.single_node_max_rows) == SPARK
    assert engine_for(500, {"expression"}, soaked.workloads["scoring"].planning.single_node_max_rows) == ARROW
    assert soaked.workloads["scoring"] == shipped.workloads["scoring"]
    with pytest.raises(ValueError, match="nope"):
        soak_dags_folder(tmp_path, ("nope",), source=REPO_ROOT / "dags")
