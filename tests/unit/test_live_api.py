"""AirflowRestClient: a read the busy api-server leaves unanswered is sent again, a write is not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from warpspeed.embedded.airflow_rest import READ_ATTEMPTS
from warpspeed.embedded.live import LiveStack


class _FakeApi(BaseHTTPRequestHandler):
    """A fake api-server: JSON answers, no request log."""

    def _send(self, code: int, body: object) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _client_of(handler: type[BaseHTTPRequestHandler], home: Path) -> Iterator[LiveStack]:
    """Serve ``handler`` on a free loopback port; yield a client of it (stopped on exit)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live = LiveStack(home, port=server.server_address[1], producer=None)
    live.env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "true"}  # no login round trip
    try:
        yield live
    finally:
        server.shutdown()
        server.server_close()


class _SlowFirst(_FakeApi):
    """Answer ``{"n": <count>}``; the first ``silent`` requests get their answer only after ``delay`` s."""

    count = 0
    silent = 1
    delay = 5.0
    release = threading.Event()

    def _answer(self) -> None:
        type(self).count += 1
        if type(self).count <= self.silent:
            self.release.wait(self.delay)
        self._send(200, {"n": type(self).count})

    do_GET = do_PATCH = _answer


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LiveStack]:
    _SlowFirst.count, _SlowFirst.silent, _SlowFirst.release = 0, 1, threading.Event()
    with _client_of(_SlowFirst, tmp_path) as live:
        try:
            yield live
        finally:
            _SlowFirst.release.set()  # the silent answers end before the server stops


def test_a_get_left_unanswered_is_sent_again(stack: LiveStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.api("GET", "/api/v2/dags", timeout=1.0) == {"n": 2}
    assert "GET /api/v2/dags" in capsys.readouterr().out and READ_ATTEMPTS >= 2


def test_a_get_left_unanswered_every_time_raises(stack: LiveStack) -> None:
    _SlowFirst.silent = READ_ATTEMPTS
    with pytest.raises(TimeoutError):
        stack.api("GET", "/api/v2/dags", timeout=1.0)
    assert _SlowFirst.count == READ_ATTEMPTS


def test_a_write_left_unanswered_is_not_sent_again(stack: LiveStack) -> None:
    with pytest.raises(TimeoutError):
        stack.api("PATCH", "/api/v2/dags/x", {"is_paused": False}, timeout=1.0)
    assert _SlowFirst.count == 1


class _Parsing(_FakeApi):
    """A DAG not stored at the first look, then parsed at ``t0``; parsed again two looks after a reparse request."""

    seen: list[str] = []
    requested_at: int | None = None

    def do_GET(self) -> None:
        seen = type(self).seen
        seen.append(f"GET {self.path}")
        if len(seen) == 1:
            self._send(404, {"detail": "not found"})
            return
        looks_after = None if self.requested_at is None else len(seen) - self.requested_at
        parsed = "t1" if looks_after is not None and looks_after > 2 else "t0"
        self._send(200, {"dag_id": "d", "file_token": "tok", "fileloc": "/dags/d.py", "last_parsed_time": parsed})

    def do_PUT(self) -> None:
        type(self).seen.append(f"PUT {self.path}")
        type(self).requested_at = len(type(self).seen)
        self._send(201, None)


def test_reparse_asks_for_a_parse_of_the_dags_file_and_waits_until_it_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Parsing.seen, _Parsing.requested_at = [], None
    monkeypatch.setattr("warpspeed.embedded.airflow_rest.time.sleep", lambda _: None)
    with _client_of(_Parsing, tmp_path) as live:
        live.reparse("d")
    assert _Parsing.seen == ["GET /api/v2/dags/d"] * 2 + ["PUT /api/v2/parseDagFile/tok"] + ["GET /api/v2/dags/d"] * 3
