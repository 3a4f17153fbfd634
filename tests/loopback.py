"""Loopback sinks for what Airflow sends out: OpenLineage events over HTTP, metrics over StatsD (UDP)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LineageSink:
    """An OpenLineage HTTP backend on 127.0.0.1 that keeps every event POSTed to it."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {"unparsed": body.decode("utf-8", "replace")}
                with sink.lock:
                    sink.events.append(event)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def transport(self) -> str:
        """Return ``[openlineage] transport`` pointing at this sink."""
        return json.dumps({"type": "http", "url": self.url, "endpoint": "api/v1/lineage", "timeout": 5})

    def snapshot(self) -> list[dict[str, Any]]:
        """Return the events received so far."""
        with self.lock:
            return list(self.events)


class StatsdSink:
    """A StatsD server on 127.0.0.1 (UDP) that keeps every line it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def env(self, prefix: str = "airflow") -> dict[str, str]:
        """Return the Airflow environment that sends metrics here."""
        return {"AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
                "AIRFLOW__METRICS__STATSD_PORT": str(self.port), "AIRFLOW__METRICS__STATSD_PREFIX": prefix}

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            with self.lock:
                self.lines += [line for line in data.decode("utf-8", "replace").splitlines() if line]

    def values(self, name: str) -> list[str]:
        """Return the values received for metric ``name`` (without the prefix), e.g. ``['48|c']``."""
        with self.lock:
            return [line.split(":", 1)[1] for line in self.lines if line.split(":", 1)[0].endswith(f".{name}")]


@contextmanager
def lineage_sink() -> Iterator[LineageSink]:
    """Run a :class:`LineageSink` until the block ends."""
    sink = LineageSink()
    thread = threading.Thread(target=sink.server.serve_forever, name="lineage-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.server.shutdown()
        sink.server.server_close()
        thread.join(timeout=10)


@contextmanager
def statsd_sink() -> Iterator[StatsdSink]:
    """Run a :class:`StatsdSink` until the block ends."""
    sink = StatsdSink()
    thread = threading.Thread(target=sink.serve, name="statsd-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.stopped.set()
        thread.join(timeout=10)
        sink.sock.close()
