"""Issue 27's chaos: server and component outages, "applied, reply lost" SQS faults, the soak's kill plan."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from warpspeed.embedded.soak.chaos import MUST_KILL, REVIVED, SERVERS, Chaos, ChaosPlan, owed_kills
from warpspeed.embedded.soak.fault_proxy import FAULTS, REPLY_LOST, REPLY_LOST_ACTIONS, FaultProxy
from warpspeed.embedded.soak.run import config_from_env
from warpspeed.exceptions import WarpSpeedError
from warpspeed.hooks.sqs import SqsIntakeHook


class _Counting(BaseHTTPRequestHandler):
    """An upstream that answers every call and counts the ones it applied, by action."""

    protocol_version = "HTTP/1.1"
    applied: dict[str, int] = {}

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        action = str(self.headers.get("X-Amz-Target")).rpartition(".")[2]
        self.applied[action] = self.applied.get(action, 0) + 1
        payload = b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _call(url: str, action: str) -> str:
    """Make one SQS-like call; return ``ok``, ``lost`` (connection dropped) or the error code answered."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": f"AmazonSQS.{action}"})
        resp = conn.getresponse()
        body = resp.read()
        return "ok" if resp.status == 200 else str(json.loads(body)["__type"]).rpartition("#")[2]
    except (ConnectionError, http.client.RemoteDisconnected):
        return "lost"
    finally:
        conn.close()


def test_a_lost_reply_was_applied_by_the_server_and_only_calls_that_change_the_queue_lose_theirs() -> None:
    _Counting.applied = {}
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", fault_rate=0.5, seed=2,
                        reply_lost_share=1.0) as proxy:
            deletes = [_call(proxy.endpoint_url, "DeleteMessageBatch") for _ in range(40)]
            reads = [_call(proxy.endpoint_url, "GetQueueAttributes") for _ in range(40)]
        assert 5 < deletes.count("lost") < 35 and set(deletes) == {"ok", "lost"}
        # every delete whose answer was lost happened on the server all the same
        assert _Counting.applied["DeleteMessageBatch"] == 40
        assert proxy.faults["DeleteMessageBatch:" + REPLY_LOST] == deletes.count("lost")
        # a read changes nothing: its faults are answered errors, never forwarded
        assert "lost" not in reads and reads.count("ok") == _Counting.applied["GetQueueAttributes"] < 40
        assert set(reads) - {"ok"} <= {code for _, code, _ in FAULTS}
        assert proxy.by_kind()[REPLY_LOST] == deletes.count("lost") and proxy.injected == 80 - reads.count("ok") - (
            40 - deletes.count("lost"))
        assert {"SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch",
                "ReceiveMessage"} <= REPLY_LOST_ACTIONS
    finally:
        upstream.shutdown()
        upstream.server_close()


def test_a_call_to_a_server_that_is_down_loses_its_connection_and_counts_no_fault() -> None:
    with FaultProxy("http://127.0.0.1:9", fault_rate=0.0) as proxy:  # nothing listens on the discard port
        assert _call(proxy.endpoint_url, "ReceiveMessage") == "lost"
        assert proxy.injected == 0 and proxy.calls == 1


def test_the_soak_kills_every_server_kind_the_api_server_and_the_dag_processor() -> None:
    plan = config_from_env({}).chaos
    assert plan.kills == 12 and plan.at_least == owed_kills(12)
    assert set(MUST_KILL) == {"engine", *SERVERS, *REVIVED} == set(plan.at_least)
    assert set(SERVERS) == {"postgres", "catalog", "sqs", "s3"}
    assert owed_kills(3) == {"engine": 1, "postgres": 1, "catalog": 1} and owed_kills(0) == {}
    assert config_from_env({"SOAK_KILLS": "0"}).chaos.at_least is None
    assert config_from_env({"SOAK_KILLS": "4"}).chaos.at_least == owed_kills(4)


class _Server:
    """A server that a kill takes down and a supervisor brings back after ``down`` seconds."""

    def __init__(self, name: str, down: float, pause: threading.Lock | None = None) -> None:
        self.name, self.down, self.pause = name, down, pause
        self.generation, self.up, self.pid = 1, True, 4242
        self.held_during_kill: bool | None = None

    @property
    def alive(self) -> bool:
        return self.up

    def kill(self) -> None:
        self.held_during_kill = self.pause.locked() if self.pause is not None else None
        self.up = False

        def back() -> None:
            time.sleep(self.down)
            self.up, self.generation = True, self.generation + 1

        threading.Thread(target=back, daemon=True).start()


def test_a_server_kill_waits_until_the_supervisor_has_it_back_and_holds_the_producer_meanwhile() -> None:
    producer_lock = threading.Lock()
    sqs = _Server("sqs", down=1.0, pause=producer_lock)
    chaos = Chaos({}, lambda _: None, ChaosPlan(poll=0.05, kills=1), servers={"sqs": sqs},
                  pauses={"sqs": producer_lock})
    chaos._running = lambda: [(1, 2, "run/score/0")]  # type: ignore[method-assign]
    assert chaos.strike("sqs")
    assert sqs.held_during_kill is True and not producer_lock.locked()  # held for the outage, then released
    assert sqs.alive and sqs.generation == 2 and dict(chaos.kills) == {"sqs": 1}
    assert len(chaos.recovered["sqs"]) == 1 and chaos.recovered["sqs"][0] >= 0.9
    assert chaos.shot_tasks == {"run/score/0"}  # an outage is a shot at every running task
    assert any("sqs back after" in line for line in chaos.log)


def test_an_outage_waits_while_a_running_task_already_lost_a_try_and_misses_a_server_it_does_not_own() -> None:
    pg = _Server("postgres", down=0.1)
    chaos = Chaos({}, lambda _: None, ChaosPlan(poll=0.05, kills=2), servers={"postgres": pg})
    chaos._running = lambda: [(1, 2, "run/collect/-1")]  # type: ignore[method-assign]
    chaos.shot_tasks.add("run/collect/-1")
    assert not chaos.strike("postgres") and pg.alive and chaos.total == 0
    assert not chaos.strike("catalog")  # the stack runs no catalog of its own here
    chaos.shot_tasks.clear()
    assert chaos.strike("postgres") and chaos.kills["postgres"] == 1


def test_a_server_that_does_not_come_back_is_reported() -> None:
    s3 = _Server("s3", down=60.0)
    chaos = Chaos({}, lambda _: None, ChaosPlan(poll=0.05, kills=1, recover_timeout=1.5), servers={"s3": s3})
    chaos._running = lambda: []  # type: ignore[method-assign]
    assert chaos.strike("s3")
    assert "s3" not in chaos.recovered and any("s3 NOT back after 2 s" in line for line in chaos.log)


class _Component:
    def __init__(self, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def test_a_component_kill_is_left_to_the_revival_and_waits_until_it_is_ready() -> None:
    api = _Component("api-server")
    old = api.proc
    checks: list[bool] = []

    def revive() -> None:  # the live stack's revival: a new process once the old one is dead
        old.wait(timeout=30)
        time.sleep(0.3)
        api.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])

    def ready() -> bool:
        checks.append(api.proc is not old)
        return len(checks) >= 2

    reviver = threading.Thread(target=revive, daemon=True)
    reviver.start()
    chaos = Chaos({"api-server": api}, lambda _: None, ChaosPlan(poll=0.05, kills=1), ready={"api-server": ready})
    chaos._running = lambda: [(7, 2, "run/plan/-1")]  # type: ignore[method-assign]
    try:
        assert chaos.strike("api-server")
        assert old.returncode == -9 and api.alive and api.proc is not old
        assert all(checks) and len(checks) == 2  # readiness asked only of the new process
        assert chaos.shot_tasks == {"run/plan/-1"} and chaos.recovered["api-server"]
    finally:
        reviver.join(timeout=30)
        for proc in (old, api.proc):
            proc.kill()
            proc.wait()


def test_a_strike_that_cannot_look_is_a_miss_not_the_end_of_the_chaos() -> None:
    chaos = Chaos({}, lambda _: None, ChaosPlan(poll=0.05, kills=1), servers={"sqs": _Server("sqs", down=0.1)})

    def api_down() -> list[tuple[int, int, str]]:
        raise urllib.error.URLError("connection refused")

    chaos._running = api_down  # type: ignore[method-assign]
    assert not chaos._try("sqs") and chaos.total == 0 and chaos.error is None


class _Sqs:
    """A client whose delete answers come from a script: ``(failed ids, botocore retry attempts)``."""

    def __init__(self, answers: list[tuple[list[str], int]]) -> None:
        self.answers = answers
        self.calls = 0

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        failed_ids, retried = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        failed = [{"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid", "Message": "gone"}
                  for e in Entries if e["Id"] in failed_ids]
        ok = [{"Id": e["Id"]} for e in Entries if e["Id"] not in failed_ids]
        return {"Successful": ok, "Failed": failed, "ResponseMetadata": {"RetryAttempts": retried}}


def test_a_delete_retried_after_its_reply_was_lost_does_not_fail_the_collect(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore re-sends a batch whose answer was lost; the server already deleted those messages."""
    lost_reply = _Sqs([(["0", "1"], 1)])
    monkeypatch.setattr(SqsIntakeHook, "sqs", property(lambda self: lost_reply))
    assert SqsIntakeHook(aws_conn_id=None).delete("q", ["h0", "h1", "h2"]) == 1 and lost_reply.calls == 1


def test_an_invalid_receipt_without_a_retried_call_still_fails_a_strict_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    stale = _Sqs([(["0"], 0)])
    monkeypatch.setattr(SqsIntakeHook, "sqs", property(lambda self: stale))
    monkeypatch.setattr(time, "sleep", lambda s: None)
    with pytest.raises(WarpSpeedError, match="could not delete 1 messages after 4 attempts"):
        SqsIntakeHook(aws_conn_id=None).delete("q", ["h0", "h1"])
    assert stale.calls == 4


def test_the_last_slots_are_kept_for_the_kills_still_owed() -> None:
    """Other kills take free slots only: with one slot left and one owed kill, the slot waits for it."""

    class Scripted(Chaos):
        sqs_tries = 0

        def strike(self, action: str) -> bool:
            if action == "sqs":
                self.sqs_tries += 1
                if self.sqs_tries < 6:  # the server cannot be killed yet (a running task lost a try)
                    return False
            self._note(action, f"kill {action}")
            return True

    plan = ChaosPlan(poll=0.05, kills=2, min_gap=0.01, max_gap=0.02, weights={"task": 1}, at_least={"sqs": 1},
                     owed_wait=0.01)
    chaos = Scripted({}, lambda _: None, plan)
    chaos.run()
    assert chaos.error is None and dict(chaos.kills) == {"task": 1, "sqs": 1} and chaos.sqs_tries == 6
