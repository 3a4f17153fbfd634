"""AirflowRestClient: a read the busy api-server leaves unanswered is sent again, a write is not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from warpspeed.embedded.airflow_rest import READ_ATTEMPTS
from warpspeed.embedded.live import LiveStack


class _SlowFirst(BaseHTTPRequestHandler):
    """Answer ``{"n": <count>}``; the first ``silent`` requests get their answer only after ``delay`` s."""

    count = 0
    silent = 1
    delay = 1.0
    release = threading.Event()

    def _answer(self) -> None:
        type(self).count += 1
        if type(self).count <= self.silent:
            self.release.wait(self.delay)
        body = json.dumps({"n": type(self).count}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LiveStack]:
    _SlowFirst.count, _SlowFirst.silent, _SlowFirst.release = 0, 1, threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowFirst)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    live = LiveStack(tmp_path, port=server.server_address[1], producer=None)
    live.env = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "true"}  # no login round trip
    try:
        yield live
    finally:
        _SlowFirst.release.set()
        server.shutdown()
        server.server_close()


def test_a_get_left_unanswered_is_sent_again(stack: LiveStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.api("GET", "/api/v2/dags", timeout=0.3) == {"n": 2}
    assert "GET /api/v2/dags" in capsys.readouterr().out and READ_ATTEMPTS >= 2


def test_a_get_left_unanswered_every_time_raises(stack: LiveStack) -> None:
    _SlowFirst.silent = READ_ATTEMPTS
    with pytest.raises(TimeoutError):
        stack.api("GET", "/api/v2/dags", timeout=0.3)
    assert _SlowFirst.count == READ_ATTEMPTS


def test_a_write_left_unanswered_is_not_sent_again(stack: LiveStack) -> None:
    with pytest.raises(TimeoutError):
        stack.api("PATCH", "/api/v2/dags/x", {"is_paused": False}, timeout=0.3)
    assert _SlowFirst.count == 1
