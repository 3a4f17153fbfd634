"""Count every S3 request the stack makes, by operation and component; inject S3's faults on demand.

A threaded TCP relay on loopback in front of the embedded S3 server: clients are pointed at the
proxy (its URL is what ``<home>/s3/endpoint`` records), requests pass byte for byte
(:mod:`warpspeed.embedded.s3_relay`), so SigV4 signatures stay valid. Each request is counted
under ``(component, operation)``, the component read from the access key it was signed with
(every component has its own key on the embedded server), and appended to a request log
(``<home>/s3/requests.jsonl``: time, component, operation, status, bytes), the embedded stand-in
for S3 server access logs, which :mod:`warpspeed.ledger.s3_requests` attributes to windows.

Faults (``make soak``): a ``rate`` share of requests is answered ``503 SlowDown`` without being
forwarded, has its connection reset before forwarding, or is forwarded after a delay (a slow
response), the failures S3 really shows; clients retry (boto3 and pyarrow 3 attempts, the Java
SDK of ``S3FileIO`` 6).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from warpspeed.embedded.s3_relay import access_key_of, classify, parse_head, read_head, relay_body, reset
from warpspeed.embedded.serving import ServingThread

log = logging.getLogger(__name__)

SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                 b"<Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>")
FAULT_ACTIONS = ("slowdown", "reset", "delay")


@dataclass(frozen=True)
class S3Faults:
    """Which requests fail and how: a ``rate`` share, each with one of ``actions`` (``delay`` sleeps ``delay_s``).

    :param components: only requests of these components (empty: every component's).
    """

    rate: float = 0.0
    actions: tuple[str, ...] = FAULT_ACTIONS
    delay_s: float = 2.0
    seed: int = 11
    components: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.rate < 1:
            raise ValueError(f"S3 fault rate must be in [0, 1), got {self.rate}")
        unknown = set(self.actions) - set(FAULT_ACTIONS)
        if unknown:
            raise ValueError(f"unknown S3 fault actions {sorted(unknown)}; use {', '.join(FAULT_ACTIONS)}")


class S3CountingProxy(ServingThread):
    """Relay S3 requests to ``upstream`` (``http://127.0.0.1:<port>``), counting and logging each one.

    :param components: access key id -> component (who signs with it).
    :param request_log: the JSON-lines request log to append to (None: count in memory only).
    :param faults: what to inject (nothing by default).
    :param port: the loopback port to listen on (0: any free one).
    """

    def __init__(self, upstream: str, components: Mapping[str, str], request_log: Path | None = None,
                 faults: S3Faults | None = None, port: int = 0) -> None:
        host, _, upstream_port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(upstream_port))
        self.components = dict(components)
        self.faults = faults or S3Faults()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._log: IO[str] | None = request_log.open("a", encoding="utf-8", buffering=1) if request_log else None
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self.server = Server(("127.0.0.1", port), Handler)
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        """The proxy's URL: what clients are given."""
        self.thread = threading.Thread(target=self.server.serve_forever, name="s3-counting-proxy", daemon=True)

    @property
    def requests(self) -> int:
        """Return how many requests arrived (injected faults included)."""
        with self.lock:
            return sum(self.counts.values())

    def by_component(self) -> dict[str, dict[str, int]]:
        """Return the requests counted so far: component -> operation -> count."""
        out: dict[str, dict[str, int]] = {}
        with self.lock:
            for (component, operation), n in sorted(self.counts.items()):
                out.setdefault(component, {})[operation] = n
        return out

    def set_faults(self, faults: S3Faults) -> None:
        """Inject ``faults`` from now on."""
        with self.lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)

    def closed(self) -> None:
        """Close the request log."""
        if self._log is not None:
            self._log.close()

    # -- one connection ------------------------------------------------------------------------
    def _decide(self, component: str, operation: str) -> str | None:
        with self.lock:
            self.counts[(component, operation)] += 1
            faults = self.faults
            if not faults.rate or (faults.components and component not in faults.components):
                return None
            if self._rng.random() >= faults.rate:
                return None
            action = self._rng.choice(faults.actions)
            self.injected[f"{operation}:{action}"] += 1
            return action

    def _record(self, component: str, operation: str, status: int, sent: int, received: int) -> None:
        if self._log is None:
            return
        line = json.dumps({"t": round(time.time(), 3), "component": component, "op": operation, "status": status,
                           "up": sent, "down": received}, separators=(",", ":"))
        with self.lock:
            self._log.write(line + "\n")

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream: socket.socket | None = None
        client_buf, upstream_buf = bytearray(), bytearray()
        try:
            while True:
                head = read_head(client, client_buf)
                if head is None:
                    return
                line, headers = parse_head(head)
                method, target = line.split(" ", 2)[:2]
                operation = classify(method, target, headers)[0]
                component = self.components.get(access_key_of(headers, target), "unknown")
                action = self._decide(component, operation)
                expect = headers.get("expect", "").lower() == "100-continue"
                if action == "reset":
                    self._record(component, operation, 0, 0, 0)
                    reset(client)
                    return
                if action == "slowdown":
                    self._record(component, operation, 503, 0, 0)
                    if not self._slow_down(client, client_buf, headers, method, expect):
                        return
                    continue
                if action == "delay":
                    time.sleep(self.faults.delay_s)
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                keep = self._forward(_Link(client, upstream, client_buf, upstream_buf), head,
                                     (method, headers, expect), (component, operation))
                if not keep:
                    return
        except (ConnectionError, OSError, ValueError):
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    @staticmethod
    def _slow_down(client: socket.socket, buf: bytearray, headers: dict[str, str], method: str,
                   expect: bool) -> bool:
        """Answer 503 SlowDown without forwarding; return whether the connection stays open."""
        if not expect:  # the body is on its way: read it off the connection
            relay_body(client, buf, None, headers)
        body = b"" if method == "HEAD" else SLOWDOWN_BODY
        client.sendall(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nx-amz-request-id: FAULT\r\n"
                       b"Content-Length: " + str(len(SLOWDOWN_BODY)).encode() + b"\r\n"
                       + (b"Connection: close\r\n" if expect else b"") + b"\r\n" + body)
        return not expect

    def _forward(self, link: _Link, head: bytes, request: tuple[str, dict[str, str], bool],
                 who: tuple[str, str]) -> bool:
        """Relay one request and its answer; return whether the connection stays open."""
        method, headers, expect = request
        client, upstream = link.client, link.upstream
        upstream.sendall(head)
        if expect:  # the server says 100 Continue (relayed) or answers at once (relayed, then closed)
            interim = read_head(upstream, link.upstream_buf)
            if interim is None:
                return False
            if interim.split(b" ", 2)[1:2] != [b"100"]:
                _, answer_headers = parse_head(interim)
                client.sendall(interim)
                relay_body(upstream, link.upstream_buf, client, answer_headers)
                self._record(*who, int(interim.split(b" ", 2)[1]), 0, 0)
                return False
            client.sendall(interim)
        sent = relay_body(client, link.client_buf, upstream, headers)
        answer = read_head(upstream, link.upstream_buf)
        if answer is None:
            return False
        status_line, answer_headers = parse_head(answer)
        status = int(status_line.split(" ", 2)[1])
        client.sendall(answer)
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        framed = "content-length" in answer_headers or "chunked" in answer_headers.get("transfer-encoding", "")
        received = 0 if no_body else relay_body(upstream, link.upstream_buf, client, answer_headers,
                                                until_close=not framed)
        self._record(*who, status, sent, received)
        return "close" not in (answer_headers.get("connection", "").lower(), headers.get("connection", "").lower())


@dataclass
class _Link:
    """One client connection and its own upstream connection, with the bytes read ahead on each."""

    client: socket.socket
    upstream: socket.socket
    client_buf: bytearray
    upstream_buf: bytearray
